"""What plugins register, described as data (in the spirit of timm's ``PretrainedCfg``).

A plugin never hands zoo a half-built object: it registers a spec, and zoo decides when to
build. Everything here is importable without TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import urlparse

from zoo.base.errors import BackendUnavailable
from zoo.model.interpolation import INTERPOLATION_NAMES, KERAS_INTERPOLATION

if TYPE_CHECKING:
    import numpy as np


MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What a model may be called, registered or served: it becomes part of file names (the export
cache) and URLs, so no ``/``, no leading dot (``..``), nothing to escape."""


def check_model_name(name: str) -> str | None:
    """Why ``name`` cannot name a model, or None if it can."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        return f"{name!r}: use letters, digits, _ . - and start with a letter or digit"
    return None


@dataclass(frozen=True)
class PreprocessSpec:
    """Pixel normalisation: ``(pixels[..., channel_order] / divisor - mean) / std``, in float32.

    ``pixels`` are RGB values in 0..255. The channel order is applied first, so ``mean`` and
    ``std`` are given in the model's own channel order. This covers Keras's ``caffe``
    (BGR, minus the ImageNet mean), ``tf`` (x/127.5 - 1) and ``torch`` (x/255, mean/std) modes.
    ``L`` is one channel, grayscale, made as Pillow's ``convert("L")`` (and so Keras's
    ``load_img(color_mode="grayscale")``) makes it; its mean and std are one value, repeated.
    """

    name: str
    channel_order: Literal["RGB", "BGR", "L"] = "RGB"
    divisor: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR", "L"):
            raise ValueError(
                f"channel_order must be 'RGB', 'BGR' or 'L', not {self.channel_order!r}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need one value per channel (3 each)")
        if self.channel_order == "L" and (len(set(self.mean)) > 1 or len(set(self.std)) > 1):
            raise ValueError("a grayscale model takes one mean and one std (L has one channel)")
        if self.divisor == 0 or 0 in self.std:
            raise ValueError("divisor and std must be non-zero")

    @property
    def channels(self) -> int:
        """What the model takes: 1 (grayscale, ``L``) or 3."""
        return 1 if self.channel_order == "L" else 3

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
    in_place: bool = False
    """A ``file:`` URL used where it is, not copied into Keras's cache: a user's own Keras
    file, which the model is read from."""

    def __post_init__(self) -> None:
        if not self.file_name:
            object.__setattr__(self, "file_name", urlparse(self.url).path.rsplit("/", 1)[-1])


Labels = str | Sequence[str] | Sequence[tuple[str, str]]
"""A label set: a known name (``"imagenet"``), a list of labels, or of (class_id, label) pairs."""


MAX_INPUT_SIDE = 8192
"""The largest input side zoo takes. The biggest classifiers take 600 (EfficientNetB7) or 518
(ViT-g) pixels; every image is resized to its model's size before anything checks the graph, so
a card or spec claiming 100000x100000 would take all the memory there is first (an 8192x8192
RGB image is 192 MiB)."""


def input_size_problem(size) -> str | None:
    """Why ``size`` (height, width) is no model's input size, or None."""
    if len(size) != 2 or not all(type(side) is int and side > 0 for side in size):
        return f"must be two positive integers, not {tuple(size)!r}"
    if max(size) > MAX_INPUT_SIDE:
        return f"{tuple(size)!r} is larger than any classifier's (at most {MAX_INPUT_SIDE} a side)"
    return None


@dataclass(frozen=True)
class ModelSpec:
    """A classifier a plugin provides.

    ``build(weights)`` returns a ``keras.Model`` whose output is class probabilities (or
    logits, declared with ``output="logits"``); it is
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
    calibration_images: tuple[str, ...] = ()
    """Photos an int8 export is calibrated on unless told ``--calibration``, e.g. a trained
    model's training images; empty: the verification photos."""
    output: Literal["probabilities", "logits"] = "probabilities"
    """What ``build``'s model outputs. ``logits``: zoo applies the softmax (in the Keras
    backend, and as an ONNX ``Softmax`` in exports). A model that outputs logits while
    declaring probabilities is refused when it first predicts."""
    interpolation: str = KERAS_INTERPOLATION
    """The resize filter the model's inputs are made with, as it was trained: what
    ``keras.utils.load_img`` uses (nearest) for the ImageNet models; a trained model's own.
    Every command uses it unless told ``--interpolation``, and exports record it."""
    rewrites: tuple[str, ...] = ()
    """The named rewrites (``zoo.sources.keras_rewrites``) a Keras file's config needed before
    Keras would load it, which an export's summary and ``--json`` name; empty otherwise."""

    def __post_init__(self) -> None:
        problem = check_model_name(self.name)
        if problem or self.name != self.name.lower():
            raise ValueError(f"model name must be lowercase, not {problem or repr(self.name)}")
        if problem := input_size_problem(self.input_size):
            raise ValueError(f"input_size {problem}")
        if not callable(self.build):
            raise ValueError("build must be callable")
        if self.output not in ("probabilities", "logits"):
            raise ValueError(f"output must be 'probabilities' or 'logits', not {self.output!r}")
        if self.interpolation not in INTERPOLATION_NAMES:
            choices = ", ".join(INTERPOLATION_NAMES)
            raise ValueError(f"interpolation must be one of {choices}, not {self.interpolation!r}")


class Runner:
    """A model loaded into a backend: maps a preprocessed float32 batch to probabilities."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run (N, height, width, 3) float32 inputs; return (N, classes) probabilities."""
        raise NotImplementedError


@dataclass(frozen=True)
class LoadOptions:
    """How a backend is asked to run a model (``zoo.load``'s and the CLI's options)."""

    provider: str = "auto"
    """The device or ONNX Runtime execution provider: ``"auto"`` lets the backend choose."""
    threads: int = 0
    """CPU threads one inference may use; 0: the runtime's default."""
    varying_batches: bool = False
    """The model will see batches of many sizes (a server's). ONNX Runtime keeps a memory
    pattern for each input shape it has seen, on top of its arena: without them, a session
    that has run batches of 1 to 32 of MobileNet holds half the memory (232 MiB more than
    after loading, not 473) at the same speed (``benchmarks/ort_memory.py``)."""
    precision: str | None = None
    """What the runtime is asked to compute in (fp32, bf16, fp16, int8...); None: float32, or
    a file's own. A backend that honours it sets its runner's ``precision`` to what the
    runtime reports it runs at; zoo refuses a load whose precision is not the one asked
    (docs/runtimes.md)."""

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be 0 or more, not {self.threads}")


class Backend:
    """An inference runtime. Subclass it, set ``name``, implement ``load``; register an instance."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> Runner:
        """Build ``spec`` with a weights file (``None``: seeded random init); return its runner.

        A backend that cannot honour an option (a provider it has no use for) raises
        ``zoo.base.errors.BackendUnavailable`` with one line saying so.
        """
        raise NotImplementedError

    def load_file(self, path: Path, options: LoadOptions) -> Runner:
        """Run a zoo-exported .onnx file; its runner has the file's ``card`` (what
        ``zoo.runtime.onnx_file.OnnxRunner`` has). A backend that runs no files keeps this."""
        raise BackendUnavailable(f"the {self.name} backend does not run .onnx files")


@dataclass(frozen=True)
class ExportOptions:
    """What ``zoo export`` asks of an exporter. An option an exporter has no use for, it
    ignores; one it cannot honour, it refuses with ``zoo.base.errors.ZooError``."""

    weights: str = "imagenet"
    """``imagenet``, ``none`` (seeded random init) or a weights file's path."""
    opset: int | None = None
    """The format's version (ONNX opset); None: the exporter's default."""
    batch: int | None = None
    """A fixed batch dimension; None: dynamic."""
    images: tuple[Path, ...] = ()
    """Photos to verify on, besides the model's own verification photos."""
    verify: bool = True
    embed_preprocessing: bool = False
    """The artifact takes raw uint8 pixels and preprocesses them itself."""
    top_k: int | None = None
    """Also output the K best classes."""
    precision: str = "fp32"
    """``fp32``, or a lower precision (``int8``, ``fp16``) with its agreement measured."""
    calibration: tuple[Path, ...] = ()
    """Photos to calibrate int8 on; empty: the model's verification photos."""
    triton: Path | None = None
    layout: str = "nhwc"
    """The image input's layout: nhwc (Keras's), or nchw (channels first: TensorRT, OpenCV DNN)."""
    """A Triton model repository: write the entry ``triton/MODEL`` instead of ``output``."""


class ExportResult(Protocol):
    """What an exporter returns."""

    def to_dict(self) -> dict[str, Any]:
        """For ``--json``."""

    def summary(self) -> str:
        """For people: what was written, and how it was checked."""


@dataclass(frozen=True)
class ExporterSpec:
    """A way to turn a registered model into a deployable artifact (e.g. ONNX).

    ``export(spec, output, options)`` writes ``output`` (or, given ``options.triton``, the
    model's entry in that Triton model repository) and returns an ``ExportResult``.
    """

    name: str
    export: Callable[[ModelSpec, Path, ExportOptions], ExportResult]
    description: str = ""
