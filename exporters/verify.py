"""Verifying an exported model: Keras and ONNX Runtime must agree on real photos.

In the spirit of Optimum's ``validate_model_outputs``: both backends get the same uint8 pixels,
each preprocesses them its own way (Keras with the registry's spec, ONNX with the one stored
in the file, so a wrong spec in the metadata is caught, or, when the file embeds its
preprocessing, with its own nodes on the raw pixels, so wrong nodes are), at batch 1 and at a
larger batch.
The top-5 must be identical, order included, and the logits must agree within a tolerance
relative to their scale. Both use the logits (pre-softmax) when the model has them: with
random-init weights the softmax is uniform to float32 precision (MobileNet's logits are
~1e-19), which would make any graph pass. A failure is a ``VerificationError`` naming the
image, both top-5 lists and the difference.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.api import Model
from zoo.artifact import TopKOutputs
from zoo.errors import ZooError
from zoo.images import KERAS_INTERPOLATION, open_image, resize
from zoo.labels import LabelList
from zoo.preprocessing import preprocess
from zoo.specs import PreprocessSpec

if TYPE_CHECKING:
    from .agreement import AgreementReport

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

    def write(self, path: Path, agreement: AgreementReport | None = None) -> None:
        """The report as JSON; with a lower-precision variant's agreement when there is one."""
        document = self.to_dict()
        if agreement is not None:
            document["agreement"] = agreement.to_dict()
        path.write_text(json.dumps(document, indent=2) + "\n")

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


@dataclass
class KerasReference:
    """What Keras makes of the photos: computed once, compared with every run of the export."""

    names: list[str]
    pixels: np.ndarray
    """(N, height, width, 3) uint8: what both sides are fed."""
    preprocessing: PreprocessSpec
    labels: LabelList
    probabilities: np.ndarray
    logits: np.ndarray | None


def load_photos(images: Sequence[Path], input_size: tuple[int, int]) -> np.ndarray:
    """The photos as a model-sized uint8 batch; a bad file fails here, before any heavy work."""
    decoded = [open_image(path) for path in images]
    return np.stack([resize(image, input_size, KERAS_INTERPOLATION) for image in decoded])


def keras_reference(
    keras_model,
    preprocessing: PreprocessSpec,
    labels: LabelList,
    images: Sequence[Path],
    pixels: np.ndarray,
    has_logits: bool,
) -> KerasReference:
    """Keras's outputs on ``pixels``; ``has_logits``: the caller removed the final softmax
    (``softmax_removed``), so the model outputs logits and the probabilities are their softmax,
    computed here in float64."""
    # One photo per call: a functional model holds every intermediate tensor of a call until
    # it returns, 0.7 GiB for NASNetMobile on 6 photos, 0.15 GiB for one.
    outputs = np.concatenate(
        [
            np.asarray(keras_model(preprocess(pixels[i : i + 1], preprocessing), training=False))
            for i in range(len(pixels))
        ]
    )
    probabilities, logits = outputs, None
    if has_logits:
        shifted = np.exp(outputs.astype(np.float64) - outputs.max(axis=-1, keepdims=True))
        probabilities, logits = shifted / shifted.sum(axis=-1, keepdims=True), outputs
    names = [Path(path).name for path in images]
    return KerasReference(names, pixels, preprocessing, labels, probabilities, logits)


def verify(
    reference: KerasReference,
    exported: Model,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> VerificationReport:
    """Run the export on the reference's photos at each batch size and compare with Keras.

    Keras ran once, on every photo: the batch size changes nothing there; in an exported graph
    with a wrong batch dimension it may.
    """
    report = VerificationReport(exported.name, exported.weights, tolerance)
    if list(exported.labels) != list(reference.labels):
        report.problems.append(
            f"the exported labels ({len(exported.labels)}) differ from the model's "
            f"({len(reference.labels)})"
        )
    card = exported.runner.card
    if card.preprocess != reference.preprocessing:  # for an embedding graph: what it describes
        report.problems.append(
            f"the exported preprocessing {card.preprocess.to_dict()} differs from the "
            f"model's {reference.preprocessing.to_dict()}"
        )
    if exported.input_size != reference.pixels.shape[1:3]:
        report.problems.append(
            f"the exported input size {exported.input_size} differs from the model's "
            f"{reference.pixels.shape[1:3]}"
        )
    if report.problems:
        return report
    if card.top_k:
        report.problems += _top_k_problems(exported, reference.pixels, card.top_k)
    keras_probs, keras_logits = reference.probabilities, reference.logits
    for index, onnx_probs, onnx_logits in exported_runs(reference, exported, batch_sizes):
        if onnx_probs.shape[1:] != keras_probs.shape[1:]:
            report.problems.append(
                f"output shapes differ: Keras {keras_probs.shape}, ONNX {onnx_probs.shape}"
            )
            return report
        for row, i in enumerate(index):
            name = reference.names[i]
            report.checks.append(
                _check(name, len(index), keras_probs[i], onnx_probs[row])
                if onnx_logits is None or keras_logits is None
                else _check(
                    name,
                    len(index),
                    keras_probs[i],
                    onnx_probs[row],
                    keras_logits[i],
                    onnx_logits[row],
                )
            )
    return report


def exported_runs(
    reference: KerasReference, exported: Model, batch_sizes: Sequence[int]
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray | None]]:
    """The export run on the reference's photos, ``batch_size`` at a time for each size:
    per run, the photos' indices, the probabilities and the logits (None if it has none)."""
    for batch in batch_sizes:
        for index in _batches(len(reference.names), batch):
            inputs = preprocess(reference.pixels[index], exported.preprocessing)
            yield index, *exported.runner.outputs(inputs)


def _top_k_problems(exported: Model, pixels: np.ndarray, top_k: TopKOutputs) -> list[str]:
    """The top-k outputs must be the k largest probabilities, in order, and where they are.

    Checked against the graph's own probabilities (which the rest compares with Keras), so
    that ties, as in a random-init model's uniform softmax, cannot fail it.
    """
    names = [exported.runner.card.probabilities_name, top_k.scores_name, top_k.indices_name]
    probabilities, scores, indices = exported.runner.run(
        names, preprocess(pixels, exported.preprocessing)
    )
    largest = -np.sort(-probabilities, axis=-1)[:, : top_k.k]
    if indices.shape != largest.shape or not np.array_equal(scores, largest):
        return [f"the top-{top_k.k} scores are not the {top_k.k} largest probabilities in order"]
    if not np.array_equal(np.take_along_axis(probabilities, indices, axis=-1), scores):
        return [f"the top-{top_k.k} indices do not point at the top-{top_k.k} scores"]
    return []


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


@contextlib.contextmanager
def softmax_removed(model) -> Iterator[bool]:
    """Make the model's final softmax an identity for a while, so that it outputs logits.

    Yields whether it could: Keras's classifiers end in a layer whose ``activation`` is the
    softmax (``Dense`` or ``Activation``). Eager calls and new traces see the change.
    """
    from zoo.keras_model import import_keras

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
