"""Verifying an exported model: Keras and ONNX Runtime must agree on real photos.

In the spirit of Optimum's ``validate_model_outputs``: both backends get the same uint8 pixels,
each preprocesses them its own way (Keras with the registry's spec, ONNX with the one stored
in the file, so a wrong spec in the metadata is caught), at batch 1 and at a larger batch. The
top-5 must be identical, order included, and the logits must agree within a tolerance relative
to their scale. Both use the logits (pre-softmax) when the model has them: with random-init
weights the softmax is uniform to float32 precision (MobileNet's logits are ~1e-19), which
would make any graph pass. A failure is a ``VerificationError`` naming the image, both top-5
lists and the difference.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from zoo.api import Model
from zoo.errors import ZooError
from zoo.images import KERAS_INTERPOLATION, open_image, resize
from zoo.labels import LabelList
from zoo.preprocessing import preprocess
from zoo.specs import PreprocessSpec

TOP = 5
DEFAULT_BATCH_SIZES = (1, 8)
DEFAULT_TOLERANCE = 1e-4
"""Max |logits(Keras) - logits(ONNX)| / max |logits(Keras)|, per image."""


class VerificationError(ZooError):
    """The exported model does not agree with Keras."""


@dataclass
class ImageCheck:
    image: str
    batch: int
    keras_top5: list[int]
    onnx_top5: list[int]
    max_abs_diff_probabilities: float
    max_abs_diff_logits: float | None
    logits_scale: float | None
    """max |logits(Keras)|: what the logits difference is measured against."""

    @property
    def top5_identical(self) -> bool:
        return self.keras_top5 == self.onnx_top5

    @property
    def relative_diff(self) -> float:
        """The logits difference over their scale; the probabilities' if there are no logits."""
        if self.max_abs_diff_logits is None or self.logits_scale is None:
            return self.max_abs_diff_probabilities
        return self.max_abs_diff_logits / max(self.logits_scale, np.finfo(np.float32).tiny)


@dataclass
class VerificationReport:
    model: str
    onnx: str
    tolerance: float
    checks: list[ImageCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Mismatches that are not about one image (labels, output size)."""

    @property
    def max_abs_diff_logits(self) -> float | None:
        diffs = [c.max_abs_diff_logits for c in self.checks if c.max_abs_diff_logits is not None]
        return max(diffs) if diffs else None

    @property
    def max_abs_diff_probabilities(self) -> float:
        return max((c.max_abs_diff_probabilities for c in self.checks), default=0.0)

    @property
    def max_relative_diff(self) -> float:
        return max((c.relative_diff for c in self.checks), default=0.0)

    def failures(self) -> list[ImageCheck]:
        return [c for c in self.checks if not c.top5_identical or c.relative_diff > self.tolerance]

    @property
    def passed(self) -> bool:
        return not self.problems and not self.failures() and bool(self.checks)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "onnx": self.onnx,
            "passed": self.passed,
            "tolerance": self.tolerance,
            "max_relative_diff": self.max_relative_diff,
            "max_abs_diff_logits": self.max_abs_diff_logits,
            "max_abs_diff_probabilities": self.max_abs_diff_probabilities,
            "images": len({c.image for c in self.checks}),
            "batch_sizes": sorted({c.batch for c in self.checks}),
            "problems": self.problems,
            "checks": [{**asdict(c), "top5_identical": c.top5_identical} for c in self.checks],
        }

    def summary(self) -> str:
        """One line, for people: what was checked and how close the outputs are."""
        photos, batches = (
            len({c.image for c in self.checks}),
            sorted({c.batch for c in self.checks}),
        )
        sizes = ", ".join(map(str, batches))
        verdict = "top-5 identical" if self.passed else "FAILED"
        diff = self.max_abs_diff_logits
        closeness = (
            f"max |probabilities diff| {self.max_abs_diff_probabilities:.2g}"
            if diff is None
            else f"max |logits diff| {diff:.2g} ({self.max_relative_diff:.2g} of their scale)"
        )
        return (
            f"verified against Keras on {photos} photos at batch sizes {sizes}: {verdict}, "
            f"{closeness}, tolerance {self.tolerance:g}"
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def raise_for_failure(self, labels: LabelList) -> None:
        if self.problems:
            raise VerificationError(f"{self.model}: {self.problems[0]}")
        failures = self.failures()
        if failures:
            worst = failures[0]
            what = "probabilities" if worst.max_abs_diff_logits is None else "logits"
            raise VerificationError(
                f"{self.model}: ONNX Runtime disagrees with Keras on {worst.image} "
                f"(batch {worst.batch}): Keras top-5 {_names(worst.keras_top5, labels)}, "
                f"ONNX top-5 {_names(worst.onnx_top5, labels)}, max |diff| of {what} "
                f"{worst.relative_diff:.3g} of their scale (tolerance {self.tolerance:g})"
            )


def _names(indices: list[int], labels: LabelList) -> str:
    return "[" + ", ".join(labels[i][1] for i in indices) + "]"


def verify(
    keras_model,
    keras_preprocessing: PreprocessSpec,
    keras_labels: LabelList,
    exported: Model,
    images: Sequence[Path],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> VerificationReport:
    """Run both backends on ``images`` at each batch size and compare them."""
    report = VerificationReport(exported.name, exported.weights, tolerance)
    if list(exported.labels) != list(keras_labels):
        report.problems.append(
            f"the exported labels ({len(exported.labels)}) differ from the model's "
            f"({len(keras_labels)})"
        )
    if exported.preprocessing != keras_preprocessing:
        report.problems.append(
            f"the exported preprocessing {exported.preprocessing.to_dict()} differs from the "
            f"model's {keras_preprocessing.to_dict()}"
        )
    decoded = [open_image(path) for path in images]
    pixels = np.stack([resize(i, exported.input_size, KERAS_INTERPOLATION) for i in decoded])
    names = [Path(path).name for path in images]
    # Keras once, on every image: batch size changes nothing in Keras, it may in an exported graph.
    keras_probs, keras_logits = _keras_outputs(keras_model, preprocess(pixels, keras_preprocessing))
    for batch in batch_sizes:
        for index in _batches(len(names), batch):
            onnx_probs, onnx_logits = exported.runner.outputs(
                preprocess(pixels[index], exported.preprocessing)
            )
            if onnx_probs.shape[1:] != keras_probs.shape[1:]:
                report.problems.append(
                    f"output shapes differ: Keras {keras_probs.shape}, ONNX {onnx_probs.shape}"
                )
                return report
            for row, i in enumerate(index):
                report.checks.append(
                    _check(names[i], len(index), keras_probs[i], onnx_probs[row])
                    if onnx_logits is None or keras_logits is None
                    else _check(
                        names[i],
                        len(index),
                        keras_probs[i],
                        onnx_probs[row],
                        keras_logits[i],
                        onnx_logits[row],
                    )
                )
    return report


def _batches(count: int, batch: int) -> Iterator[list[int]]:
    """Indices into the images, ``batch`` at a time; images repeat to fill a batch larger than
    the set, so that the larger batch size really runs."""
    if batch >= count:
        yield [i % count for i in range(batch)]
        return
    for start in range(0, count, batch):
        yield list(range(start, min(start + batch, count)))


def _check(image, batch, keras_probs, onnx_probs, keras_logits=None, onnx_logits=None):
    """One image's comparison; ranked by the logits when there are some."""
    has_logits = keras_logits is not None
    return ImageCheck(
        image=image,
        batch=batch,
        keras_top5=_top(keras_logits if has_logits else keras_probs),
        onnx_top5=_top(onnx_logits if has_logits else onnx_probs),
        max_abs_diff_probabilities=_max_diff(keras_probs, onnx_probs),
        max_abs_diff_logits=_max_diff(keras_logits, onnx_logits) if has_logits else None,
        logits_scale=float(np.max(np.abs(keras_logits))) if has_logits else None,
    )


def _top(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(scores)[-TOP:][::-1]]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _keras_outputs(model, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras's probabilities, and its logits when the model ends in a softmax (then the
    probabilities are that softmax, computed here in float64 from the same logits)."""
    with softmax_removed(model) as has_logits:
        outputs = np.asarray(model(batch, training=False))
    if not has_logits:
        return outputs, None
    shifted = np.exp(outputs.astype(np.float64) - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True), outputs


@contextlib.contextmanager
def softmax_removed(model) -> Iterator[bool]:
    """Make the model's final softmax an identity for a while, so that it outputs logits.

    Yields whether it could: Keras's classifiers end in a layer whose ``activation`` is the
    softmax (``Dense`` or ``Activation``). Eager calls and new traces see the change.
    """
    from zoo.plugins.keras_backend import import_keras

    keras = import_keras()
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if activation is not keras.activations.softmax:
        yield False
        return
    last.activation = keras.activations.linear
    try:
        yield True
    finally:
        last.activation = activation
