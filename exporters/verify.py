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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from zoo.exporters.errors import NonFiniteOutputs, VerificationError
from zoo.exporters.keras_outputs import (
    DEFAULT_BATCH_SIZES,
    KerasReference,
    exported_runs,
    label_names,
    non_finite_side,
    top_indices,
)
from zoo.model.card import TopKOutputs, VerifiedOn
from zoo.model.labels import LabelList
from zoo.runtime.model import Model
from zoo.runtime.preprocessing import preprocess

DEFAULT_TOLERANCE = 1e-4
"""Max |logits(Keras) - logits(ONNX)| / max |logits(Keras)|, per image."""


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
            "verified_on": VerifiedOn.here().to_dict(),
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

    def raise_for_failure(self, labels: LabelList) -> None:
        if self.problems:
            raise VerificationError(f"{self.model}: {self.problems[0]}")
        failures = self.failures()
        if failures:
            worst = failures[0]
            what = "probabilities" if worst.max_abs_diff_logits is None else "logits"
            raise VerificationError(
                f"{self.model}: ONNX Runtime disagrees with Keras on {worst.image} "
                f"(batch {worst.batch}): Keras top-5 {label_names(worst.keras_top5, labels)}, "
                f"ONNX top-5 {label_names(worst.onnx_top5, labels)}, max |diff| of {what} "
                f"{worst.relative_diff:.3g} of their scale (tolerance {self.tolerance:g})"
            )


def label_difference(exported, expected) -> str | None:
    """Where the exported labels first differ from the model's, naming both; None if equal."""
    exported, expected = [tuple(pair) for pair in exported], [tuple(pair) for pair in expected]
    if exported == expected:
        return None
    for index, (theirs, ours) in enumerate(zip(exported, expected, strict=False)):
        if theirs != ours:
            return (
                f"the exported labels differ from the model's at index {index}: "
                f"{_label(theirs)} in the file, {_label(ours)} in the model"
            )
    return (
        f"the file has {len(exported)} labels, the model {len(expected)}; the first "
        f"{min(len(exported), len(expected))} agree"
    )


def _label(pair: tuple) -> str:
    class_id, label = pair
    return f"{label!r} ({class_id})" if class_id != label else repr(label)


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
    labels_problem = label_difference(exported.labels, reference.labels)
    if labels_problem:
        report.problems.append(labels_problem)
    card = exported.runner.card
    # for an embedding graph: what it describes
    if card.input.preprocess != reference.preprocessing:
        report.problems.append(
            f"the exported preprocessing {card.input.preprocess.to_dict()} differs from the "
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
            side = non_finite_side(
                (keras_probs[i], None if keras_logits is None else keras_logits[i]),
                (onnx_probs[row], None if onnx_logits is None else onnx_logits[row]),
            )
            if side:
                raise NonFiniteOutputs(exported.name, side, name, len(index))
            report.checks.append(
                image_check(name, len(index), keras_probs[i], onnx_probs[row])
                if onnx_logits is None or keras_logits is None
                else image_check(
                    name,
                    len(index),
                    keras_probs[i],
                    onnx_probs[row],
                    keras_logits[i],
                    onnx_logits[row],
                )
            )
    return report


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


def image_check(image, batch, keras_probs, onnx_probs, keras_logits=None, onnx_logits=None):
    """One image's comparison; ranked by the logits when there are some."""
    has_logits = keras_logits is not None
    return ImageCheck(
        image=image,
        batch=batch,
        keras_top5=top_indices(keras_logits if has_logits else keras_probs),
        onnx_top5=top_indices(onnx_logits if has_logits else onnx_probs),
        max_abs_diff_probabilities=_max_diff(keras_probs, onnx_probs),
        max_abs_diff_logits=_max_diff(keras_logits, onnx_logits) if has_logits else None,
        logits_scale=float(np.max(np.abs(keras_logits))) if has_logits else None,
    )


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
