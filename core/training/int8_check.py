"""How an int8 or fp16 export agrees with its float32 model on a labelled folder.

The export measured its agreement with Keras on a handful of photos when it was made;
``zoo evaluate`` measures it again on the user's own images, with the export's thresholds.
The float32 model is ``--reference`` (a registered name or a float32 .onnx file) or, by
default, the model the file's card names, loaded in Keras with the weights the card records,
and used only when their sha256 is the one the card recorded: a reference that is not the
model the export was made from would measure something else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.base.errors import ZooError
from zoo.base.progress import note
from zoo.exporters.agreement import THRESHOLDS, AgreementReport, PhotoAgreement
from zoo.exporters.keras_outputs import top_indices
from zoo.runtime.api import load
from zoo.runtime.model import Model
from zoo.sources.weights import WeightsSource, file_digest


class Comparison:
    """A lower-precision model's outputs against its float32 reference's, image by image;
    without a reference (``reason`` says why), it records nothing."""

    def __init__(self, model: Model, reference: Model | None, reason: str | None = None):
        self.reference, self.reason = reference, reason
        self.report = AgreementReport(model.name, model.precision, THRESHOLDS[model.precision])
        self.reference_rows: list[np.ndarray] = []

    def add(
        self,
        files: list[str],
        pixels: np.ndarray,
        probabilities: np.ndarray,
        fold: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """One batch: ``probabilities`` are the model's on ``pixels``; ``fold`` maps outputs
        to the folder's classes (for the reference's own top-1)."""
        if self.reference is None:
            return
        expected = self.reference.probabilities(pixels)
        self.reference_rows.append(fold(expected))
        for file, ours, theirs in zip(files, probabilities, expected, strict=True):
            self.report.photos.append(
                PhotoAgreement(
                    image=file,
                    batch=len(files),
                    keras_top5=top_indices(theirs),
                    onnx_top5=top_indices(ours),
                    max_probability_diff=float(np.max(np.abs(ours - theirs))),
                )
            )

    def summary(self, truth: np.ndarray) -> dict:
        """The figures against the export's thresholds, the reference's top-1 on the same
        images, and the images whose top-1 class moved."""
        if self.reference is None:
            return {"measured": False, "reason": self.reason}
        summary = {"measured": True, **self.report.to_dict()}
        for key in ("photos", "calibration_images", "calibrated_on_verification_photos"):
            summary.pop(key)
        labels = self.reference.labels
        reference_top1 = np.concatenate(self.reference_rows).argmax(axis=1) == truth
        return {
            **summary,
            "reference": f"{self.reference.name} ({self.reference.backend}, fp32)",
            "images": len(self.report.photos),
            "reference_top1": float(np.mean(reference_top1)),
            "top1_changed": [
                {
                    "file": photo.image,
                    "reference": labels[photo.keras_top5[0]][1],
                    "predicted": labels[photo.onnx_top5[0]][1],
                }
                for photo in self.report.photos
                if not photo.top1_agrees
            ],
        }


def fp32_comparison(
    model: Model, reference: str | os.PathLike | None, provider: str, threads: int
) -> Comparison | None:
    """None for a float32 model. A ``reference`` the user named must load and match (a
    ``ZooError`` otherwise); the card's own model may be missing (no TensorFlow here, weights
    not here), which is said in one line rather than failing the evaluation."""
    if model.precision == "fp32":
        return None
    if reference is not None:
        loaded = load(reference, provider=provider, threads=threads)
        if loaded.precision != "fp32":
            raise ZooError(f"--reference {reference}: is {loaded.precision}, not float32")
        if loaded.labels != model.labels:
            raise ZooError(f"--reference {reference}: has other labels than {model.name}")
        if model.card is not None and _source_sha256(loaded) != model.card.weights_sha256:
            raise ZooError(
                f"--reference {reference}: made from other weights than {model.name}'s "
                "(their sha256 differ), so the comparison would measure something else"
            )
        return Comparison(model, loaded)
    found, reason = _card_model(model, provider, threads)
    if found is None:
        note(f"zoo: agreement with float32 not measured: {reason}")
    return Comparison(model, found, reason)


def _card_model(model: Model, provider: str, threads: int) -> tuple[Model | None, str | None]:
    """The float32 model the export's card names, in Keras, with the weights it was made
    from; or None and why not."""
    card = model.card
    if card is None or WeightsSource.parse(card.weights).file is not None:
        source = card.weights if card else "unknown weights"
        return None, f"it was exported from {source}; pass --reference FP32_MODEL"
    try:
        loaded = load(card.model, weights=card.weights, provider=provider, threads=threads)
    except ZooError as error:
        return None, f"{error}; pass --reference FP32.onnx"
    if _source_sha256(loaded) != card.weights_sha256:
        return None, f"{card.model}'s weights here are not the ones it was exported from"
    return loaded, None


def _source_sha256(model: Model) -> str | None:
    """The sha256 of the weights ``model`` was made from: an exported file's card says; a
    loaded model's weights file is hashed (None: random init)."""
    if model.card is not None:
        return model.card.weights_sha256
    return file_digest(Path(model.weights)) if model.weights != "none" else None
