"""``zoo verify MODEL FILE``: check an existing export against Keras, with the weights it was
made from: exactly for a float32 file, by its agreement for an int8 or fp16 one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from zoo.base.progress import note, status
from zoo.exporters.agreement import AgreementReport, agreement
from zoo.exporters.errors import ExportError
from zoo.exporters.keras_outputs import (
    DEFAULT_BATCH_SIZES,
    KerasReference,
    keras_reference,
    load_photos,
    logits_model,
)
from zoo.exporters.verify import VerificationReport, verify
from zoo.exporters.verify_report import VerifyReport
from zoo.model.card import ModelCard
from zoo.model.labels import resolve_labels
from zoo.model.spec import ModelSpec
from zoo.plugin.registry import get_registry
from zoo.runtime.cpu_check import acknowledge, reverified_line
from zoo.runtime.onnx_file import load_onnx
from zoo.runtime.samples import verification_images
from zoo.sources.keras_model import build_keras_model
from zoo.sources.weights import WeightsSource, file_digest, resolve_weights


def verify_file(
    spec: ModelSpec, path: Path, weights: str | None = None, images: Sequence[Path] = ()
) -> VerificationReport | AgreementReport:
    """Verify an existing export of ``spec`` against Keras with the weights it was made from:
    exactly for float32, by its agreement for an int8 or fp16 file."""
    acknowledge(path)  # no warning to run 'zoo verify': this is it
    exported = load_onnx(path, provider="cpu")
    card = exported.runner.card
    reference = keras_reference_for(spec, card, path, weights, images)
    report_path = path.with_suffix(".verify.json")
    if card.precision == "fp32":
        report = verify(reference, exported)
        VerifyReport.of(card.model, path, float32=report).write(report_path)
        return report
    report = agreement(reference, exported, card.precision, DEFAULT_BATCH_SIZES)
    VerifyReport.of(card.model, path, agreement=report).write(report_path)
    if line := reverified_line(card, report.passed):
        note(f"zoo: {line}")
    return report


def keras_reference_for(
    spec: ModelSpec, card: ModelCard, path: Path, weights: str | None, images: Sequence[Path]
) -> KerasReference:
    """Keras's outputs on ``spec``'s verification photos and ``images``, with the weights the
    export at ``path`` (whose card is ``card``) was made from."""
    registry = get_registry()
    if card.model != spec.name:
        raise ExportError(f"{path} holds {card.model!r}, not {spec.name!r}")
    if weights is None:
        if WeightsSource.parse(card.weights).file is not None:
            raise ExportError(
                f"{path} was exported from the weights file {card.weights}; pass --weights PATH"
            )
        weights = card.weights
    weights_path = resolve_weights(spec, weights)
    digest = file_digest(weights_path) if weights_path else None
    if digest != card.weights_sha256:
        raise ExportError(
            f"{path} was exported from other weights (sha256 {card.weights_sha256}) "
            f"than {weights_path or 'random init'} (sha256 {digest})"
        )
    photos = [*verification_images(spec), *images]
    pixels = load_photos(photos, get_registry().input_config(spec))
    keras_model = build_keras_model(spec, weights_path)
    status(f"verifying {path} against Keras on {len(photos)} photos")
    labels = resolve_labels(spec.labels)
    with logits_model(keras_model, spec) as (keras_model, has_logits):
        return keras_reference(
            keras_model, registry.preprocessor(spec), labels, photos, pixels, has_logits
        )
