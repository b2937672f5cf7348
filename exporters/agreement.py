"""How far a lower-precision export (int8, fp16) agrees with the float32 Keras model.

A float32 export must give Keras's top-5 exactly (``verify``). An int8 or fp16 one cannot:
rounding moves every score a little, and may swap classes whose scores are close. What users
need instead is how often the answer stays the same, measured on real photos: the share of
photos with the same top-1 class, the mean share of top-5 classes in common, and the largest
change of a probability. Each has a threshold chosen per precision and written in the report
next to the measured value, so that a pass is never a silently loosened check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from zoo.exporters.errors import VerificationError
from zoo.exporters.keras_outputs import KerasReference, exported_runs, label_names, top_indices
from zoo.model.labels import LabelList
from zoo.runtime.model import Model


@dataclass(frozen=True)
class Thresholds:
    top1_agreement: float
    """The least share of photos whose top-1 class must match Keras's."""
    top5_overlap: float
    """The least mean share of the top-5 classes the two must have in common."""
    max_probability_diff: float | None
    """The largest allowed change of any probability; None: measured, not a criterion."""


# int8: what the default recipe (7-bit weights) reaches with MobileNet's real weights on 15
# photos, alike on a VNNI CPU and an emulated AVX2-only one: top-1 15/15, mean top-5 overlap
# 0.89, max probability change 0.15 (benchmarks/int8_recipes.py, docs/int8-cpus.md).
INT8_THRESHOLDS = Thresholds(top1_agreement=0.95, top5_overlap=0.85, max_probability_diff=0.3)
THRESHOLDS = {
    # Another runtime computing in float32 (zoo bench --precisions): the same top-5 classes.
    "fp32": Thresholds(top1_agreement=1.0, top5_overlap=1.0, max_probability_diff=None),
    "int8": INT8_THRESHOLDS,
    "int8-vnni": INT8_THRESHOLDS,
    # float16 keeps 11 significant bits: rankings only change between near-ties.
    "fp16": Thresholds(top1_agreement=1.0, top5_overlap=0.8, max_probability_diff=0.01),
    # bfloat16 (OpenVINO on AVX512-BF16/AMX CPUs) keeps 8: int8's thresholds, set from what
    # MobileNet's real weights reach on the 15 photos (docs/runtimes.md).
    "bf16": INT8_THRESHOLDS,
}


@dataclass
class PhotoAgreement:
    image: str
    batch: int
    keras_top5: list[int]
    onnx_top5: list[int]
    max_probability_diff: float

    @property
    def top1_agrees(self) -> bool:
        return self.keras_top5[0] == self.onnx_top5[0]

    @property
    def top5_overlap(self) -> float:
        """The share of the reference's top-5 that the export's top-5 has too (of its top-k
        when the model has fewer than five classes)."""
        return len(set(self.keras_top5) & set(self.onnx_top5)) / len(self.keras_top5)


@dataclass
class AgreementReport:
    model: str
    precision: str
    thresholds: Thresholds
    calibration_images: list[str] = field(default_factory=list)
    """The photos int8 ranges were calibrated on (none for fp16)."""
    photos: list[PhotoAgreement] = field(default_factory=list)

    @property
    def top1_agreement(self) -> float:
        return float(np.mean([p.top1_agrees for p in self.photos])) if self.photos else 0.0

    @property
    def top5_overlap(self) -> float:
        return float(np.mean([p.top5_overlap for p in self.photos])) if self.photos else 0.0

    @property
    def max_probability_diff(self) -> float:
        return max((p.max_probability_diff for p in self.photos), default=0.0)

    def failures(self) -> list[str]:
        """Each threshold the measurement misses, as a phrase."""
        limits = self.thresholds
        missed = []
        if self.top1_agreement < limits.top1_agreement:
            missed.append(
                f"top-1 agrees on {self.top1_agreement:.0%} of photos, "
                f"below the {limits.top1_agreement:.0%} required"
            )
        if self.top5_overlap < limits.top5_overlap:
            missed.append(
                f"mean top-5 overlap {self.top5_overlap:.2f}, below the "
                f"{limits.top5_overlap:.2f} required"
            )
        if limits.max_probability_diff is not None and (
            self.max_probability_diff > limits.max_probability_diff
        ):
            missed.append(
                f"max |probability diff| {self.max_probability_diff:.3g}, above the "
                f"{limits.max_probability_diff:g} allowed"
            )
        return missed

    @property
    def passed(self) -> bool:
        return bool(self.photos) and not self.failures()

    def summary(self) -> str:
        """For people: the three measurements, their thresholds, and what int8 means."""
        images = len({p.image for p in self.photos})
        limits = self.thresholds
        diff_limit = (
            "not a criterion"
            if limits.max_probability_diff is None
            else f"at most {limits.max_probability_diff:g}"
        )
        verdict = "passes" if self.passed else "FAILS"
        return (
            f"{self.precision} against float32 Keras on {images} photos: {verdict}: "
            f"top-1 agrees on {self.top1_agreement:.0%} (at least {limits.top1_agreement:.0%}), "
            f"mean top-5 overlap {self.top5_overlap:.2f} (at least {limits.top5_overlap:.2f}), "
            f"max |probability diff| {self.max_probability_diff:.3g} ({diff_limit}). "
            f"{self.precision} approximates the float32 model: its outputs are not "
            "bit-identical to Keras's and are not expected to be."
        )

    def to_dict(self) -> dict:
        overlap = sorted({p.image for p in self.photos} & set(self.calibration_images))
        return {
            "precision": self.precision,
            "passed": self.passed,
            "thresholds": asdict(self.thresholds),
            "top1_agreement": self.top1_agreement,
            "top5_overlap": self.top5_overlap,
            "max_probability_diff": self.max_probability_diff,
            "failures": self.failures(),
            "calibration_images": self.calibration_images,
            "calibrated_on_verification_photos": overlap,
            "photos": [
                {**asdict(p), "top1_agrees": p.top1_agrees, "top5_overlap": p.top5_overlap}
                for p in self.photos
            ],
        }

    def raise_for_failure(self, labels: LabelList) -> None:
        if self.passed:
            return
        worst = next((p for p in self.photos if not p.top1_agrees), None)
        example = (
            f"; e.g. {worst.image}: Keras top-5 {label_names(worst.keras_top5, labels)}, "
            f"{self.precision} top-5 {label_names(worst.onnx_top5, labels)}"
            if worst
            else ""
        )
        raise VerificationError(
            f"{self.model}: the {self.precision} model does not agree with Keras enough: "
            f"{'; '.join(self.failures()) or 'no photos checked'}{example}"
        )


def agreement(
    reference: KerasReference,
    exported: Model,
    precision: str,
    batch_sizes: Sequence[int],
    calibration_images: Sequence[Path] = (),
) -> AgreementReport:
    """Run the lower-precision export on the reference's photos, at each batch size, and
    compare with Keras; each photo counts once per batch size."""
    report = AgreementReport(
        exported.name,
        precision,
        THRESHOLDS[precision],
        calibration_images=[Path(path).name for path in calibration_images],
    )
    for index, probabilities, logits in exported_runs(reference, exported, batch_sizes):
        # Ranked by the logits when both sides have them, as in ``verify``: a random-init
        # model's softmax is uniform, and would agree with anything.
        keras_scores, scores = (
            (reference.probabilities, probabilities)
            if logits is None or reference.logits is None
            else (reference.logits, logits)
        )
        # A batch larger than the set repeats the photos after the first pass: count each once.
        for row, i in enumerate(index[: len(reference.names)]):
            keras = reference.probabilities[i]
            report.photos.append(
                PhotoAgreement(
                    image=reference.names[i],
                    batch=len(index),
                    keras_top5=top_indices(keras_scores[i]),
                    onnx_top5=top_indices(scores[row]),
                    max_probability_diff=float(
                        np.max(np.abs(keras - probabilities[row].astype(np.float64)))
                    ),
                )
            )
    return report
