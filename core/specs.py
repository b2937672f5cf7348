"""What plugins register, described as data (in the spirit of timm's ``PretrainedCfg``).

A plugin never hands zoo a half-built object: it registers a spec, and zoo decides when to
build. Everything here is importable without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np


@dataclass(frozen=True)
class PreprocessSpec:
    """Pixel normalisation: ``(pixels[..., channel_order] / divisor - mean) / std``, in float32.

    ``pixels`` are RGB values in 0..255. The channel order is applied first, so ``mean`` and
    ``std`` are given in the model's own channel order. This covers Keras's ``caffe``
    (BGR, minus the ImageNet mean), ``tf`` (x/127.5 - 1) and ``torch`` (x/255, mean/std) modes.
    """

    name: str
    channel_order: Literal["RGB", "BGR"] = "RGB"
    divisor: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', not {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need one value per channel (3 each)")
        if self.divisor == 0 or 0 in self.std:
            raise ValueError("divisor and std must be non-zero")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        return cls(
            name=data["name"],
            channel_order=data["channel_order"],
            divisor=float(data["divisor"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel_order": self.channel_order,
            "divisor": self.divisor,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's pretrained weights are published, as Keras itself names them.

    ``file_hash`` is the md5 or sha256 hex digest Keras publishes (told apart by length,
    as ``keras.utils.get_file`` does); ``None`` when Keras publishes none.
    """

    url: str
    file_hash: str | None = None
    file_name: str = ""

    def __post_init__(self) -> None:
        if not self.file_name:
            object.__setattr__(self, "file_name", urlparse(self.url).path.rsplit("/", 1)[-1])


Labels = str | Sequence[str] | Sequence[tuple[str, str]]
"""A label set: a known name (``"imagenet"``), a list of labels, or of (class_id, label) pairs."""


@dataclass(frozen=True)
class ModelSpec:
    """A classifier a plugin provides.

    ``build(weights)`` returns a ``keras.Model`` whose output is class probabilities; it is
    called with the path of a weights file, or ``None`` for random initialisation (zoo seeds
    the random generators first). It must import Keras inside the function, never at module
    level, so that ``zoo list`` stays fast and the ONNX Runtime path works without TensorFlow.
    """

    name: str
    build: Callable[[str | None], Any]
    input_size: tuple[int, int]
    """(height, width) in pixels."""
    preprocess: str | PreprocessSpec
    """A registered preprocessor's name, or a spec of the model's own."""
    labels: Labels = "imagenet"
    weights: WeightsSpec | None = None
    """The published weights ``--weights imagenet`` fetches; None if there are none."""
    aliases: tuple[str, ...] = ()
    description: str = ""
    verification_images: tuple[str, ...] = ()
    """Photos an export is verified (and int8 calibrated) on instead of zoo's ImageNet samples:
    for a model of other classes, e.g. a trained model's own validation images."""

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or any(c.isspace() for c in self.name):
            raise ValueError(f"model name must be lowercase with no spaces, not {self.name!r}")
        height, width = self.input_size
        if height <= 0 or width <= 0:
            raise ValueError(f"input_size must be positive, not {self.input_size!r}")
        if not callable(self.build):
            raise ValueError("build must be callable")


class Runner:
    """A model loaded into a backend: maps a preprocessed float32 batch to probabilities."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run (N, height, width, 3) float32 inputs; return (N, classes) probabilities."""
        raise NotImplementedError


class Backend:
    """An inference runtime. Subclass it, set ``name``, implement ``load``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def load(
        self, spec: ModelSpec, weights: Path | None, provider: str = "auto", threads: int = 0
    ) -> Runner:
        """Build ``spec`` with a weights file (``None``: seeded random init); return its runner.

        ``provider`` names the device or execution provider to run on; ``"auto"`` lets the
        backend choose. ``threads``: CPU threads one inference may use (0: the runtime's
        default). zoo passes ``threads`` only when a user sets it, so a backend written before
        it existed keeps working.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class ExporterSpec:
    """A way to turn a registered model into a deployable artifact (e.g. ONNX).

    ``export(spec, output, weights=..., opset=..., batch=..., images=..., verify_output=...,
    embed_preprocessing=..., top_k=..., triton=...)`` writes ``output`` (or, given ``triton``,
    a folder, the model's entry in that Triton model repository) and returns a result with
    ``to_dict()`` (for ``--json``) and ``summary()`` (for people). ``embed_preprocessing``:
    the artifact takes raw uint8 pixels; ``top_k``: it also outputs the K best classes. Options
    an exporter has no use for, it ignores (take ``**options``).
    """

    name: str
    export: Callable[..., Any]
    description: str = ""
