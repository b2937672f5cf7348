"""``zoo export MODEL --onnx``: a registered model as a verified, self-describing ONNX file.

Steps, each a function below: check the request and the destination (before any heavy work);
describe the model (``model_card``); build the Keras model and convert it with the final
softmax removed, so that the graph outputs ``logits`` and, through an ONNX ``Softmax``,
``probabilities``, plus what was asked for (preprocessing for uint8 input, top-k outputs) and
the card in ``metadata_props``; write it to a temporary file beside the destination and verify
it exactly against Keras (``_verify_float32``); for int8 or fp16, make that variant from the
verified float32 graph and measure its agreement with Keras (``_lower_precision``); only then
rename it into place. Failure, Ctrl-C or SIGTERM at any step leaves nothing at the destination.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from zoo.base.files import atomic_path, scratch_directory
from zoo.base.progress import status
from zoo.base.version import __version__
from zoo.exporters.agreement import AgreementReport, agreement
from zoo.exporters.convert import Conversion, keras_to_onnx
from zoo.exporters.errors import ExportError, VerificationError
from zoo.exporters.keras_outputs import (
    DEFAULT_BATCH_SIZES,
    KerasReference,
    keras_reference,
    load_photos,
    logits_model,
)
from zoo.exporters.layout import LAYOUTS, input_as_nchw
from zoo.exporters.precision import PRECISIONS, is_int8, lower_precision
from zoo.exporters.results import OnnxExportResult
from zoo.exporters.triton import export_to_triton
from zoo.exporters.verify import VerificationReport, verify
from zoo.exporters.verify_report import VerifyReport
from zoo.model.card import METADATA_KEY, ModelCard, TopKOutputs, VerifiedOn
from zoo.model.input_config import InputConfig
from zoo.model.labels import LabelList, check_labels
from zoo.model.spec import ExportOptions, ModelSpec
from zoo.plugin.registry import get_registry
from zoo.runtime.onnx_file import import_onnxruntime, load_onnx
from zoo.runtime.preprocessing import preprocess
from zoo.runtime.samples import calibration_images, verification_images
from zoo.sources.keras_model import build_keras_model
from zoo.sources.weights import WeightsSource, file_digest, resolve_weights

DEFAULT_OPSET = 17
"""Well supported by tf2onnx and by every ONNX Runtime of the last years."""
TOP_K_MIN_OPSET = 11
"""``TopK`` with k as an input and a defined order for ties."""
DEFAULT_OPTIONS = ExportOptions()


def export(spec: ModelSpec, output: Path, options: ExportOptions) -> OnnxExportResult:
    """The registered ``onnx`` exporter: ``export_onnx`` to ``output``, or with
    ``options.triton`` (a Triton model repository) into the entry ``triton/MODEL`` instead."""
    if options.triton is None:
        return export_onnx(spec, output, options)
    return export_to_triton(
        spec.name, Path(options.triton), lambda path: export_onnx(spec, path, options)
    )


def check_destination(path: Path) -> None:
    """One clear line now, rather than a failure after minutes of work."""
    if path.is_dir():
        raise ExportError(f"{path}: is a directory; give a file name such as model.onnx")
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{path}: folder {folder} is not writable")


def check_options(options: ExportOptions, labels: LabelList) -> None:
    """The options that depend on the model, checked before any heavy work."""
    opset = options.opset or DEFAULT_OPSET
    check_labels((class_id for class_id, _ in labels), "the model's labels", "class id")
    check_labels((label for _, label in labels), "the model's labels")
    if options.layout not in LAYOUTS:
        raise ExportError(f"unknown layout {options.layout!r}; choose from {', '.join(LAYOUTS)}")
    if options.precision not in PRECISIONS:
        raise ExportError(
            f"unknown precision {options.precision!r}; choose from {', '.join(PRECISIONS)}"
        )
    if options.top_k is not None:
        if opset < TOP_K_MIN_OPSET:
            raise ExportError(f"--top-k needs opset {TOP_K_MIN_OPSET} or newer, not {opset}")
        if not 1 <= options.top_k <= len(labels):
            raise ExportError(
                f"--top-k must be between 1 and {len(labels)} (the classes), not {options.top_k}"
            )


def model_card(
    spec: ModelSpec, options: ExportOptions, config: InputConfig, weights_path: Path | None
) -> ModelCard:
    """What the float32 file will say about itself (a lower precision is set once made). Its
    graph ends in probabilities whatever the model's own does (logits get a Softmax)."""
    return ModelCard(
        model=spec.name,
        input=dataclasses.replace(config, output="probabilities"),
        weights=WeightsSource.parse(options.weights).recorded(),
        weights_sha256=file_digest(weights_path) if weights_path else None,
        zoo_version=__version__,
        opset=options.opset or DEFAULT_OPSET,
        input_dtype="uint8" if options.embed_preprocessing else "float32",
        input_layout=options.layout.upper(),
        top_k=TopKOutputs(options.top_k) if options.top_k else None,
        verified_on=VerifiedOn.here() if options.verify else None,
    )


def export_onnx(
    spec: ModelSpec, output: Path, options: ExportOptions = DEFAULT_OPTIONS
) -> OnnxExportResult:
    """Export ``spec`` to ``output``, verified on its verification photos plus
    ``options.images``; see the module's docstring for the steps."""
    check_destination(output)
    registry = get_registry()
    config = registry.input_config(spec)
    preprocessing, labels = config.preprocess, config.labels
    check_options(options, labels)
    weights_path = resolve_weights(spec, options.weights)
    card = model_card(spec, options, config, weights_path)
    photos = [*verification_images(spec), *options.images] if options.verify else []
    # Bad files fail now, before any heavy work.
    pixels = load_photos(photos, config) if photos else None
    calibration, calibration_pixels = (), None
    if is_int8(options.precision):
        calibration = options.calibration or calibration_images(spec)
        calibration_pixels = load_photos(calibration, config)
    status(f"building {spec.name} in Keras")
    keras_model = build_keras_model(spec, weights_path)
    if options.verify:
        # Imported now rather than once the temporary file exists: Ctrl-C or SIGTERM in the
        # middle of importing a C extension can crash the interpreter on its way out, leaving
        # the file behind.
        import_onnxruntime()
    report = report_path = agreement_report = None
    with (
        logits_model(keras_model, spec) as (keras_model, has_logits),
        ThreadPoolExecutor(1) as pool,
    ):
        # Keras's side of the verification runs while the graph is converted and written: the
        # conversion is mostly Python, Keras's forward pass mostly outside the GIL.
        reference: Future[KerasReference] | None = None
        if options.verify:
            reference = pool.submit(
                keras_reference, keras_model, preprocessing, labels, photos, pixels, has_logits
            )
        status(f"converting {spec.name} to ONNX (opset {card.opset})")
        # Verification loads the file into ONNX Runtime, which validates it: no onnx.checker then.
        proto, card, conversion = _convert(
            keras_model, card, options.batch, has_logits, not options.verify
        )
        with (
            atomic_path(output) as temporary,
            scratch_directory(output) as scratch,
        ):
            lower = card.precision != options.precision
            float32 = Path(scratch) / "float32.onnx" if lower else temporary
            float32.write_bytes(proto.SerializeToString())  # onnx.save serialises twice
            del proto
            if reference is not None:
                report_path = output.with_suffix(".verify.json")
                report = _verify_float32(
                    reference.result(), float32, output, report_path, conversion
                )
            if lower:
                card = dataclasses.replace(card, precision=options.precision)
                _make_lower_precision(float32, temporary, card, calibration_pixels)
                if reference is not None:
                    agreement_report = _measure_agreement(
                        reference.result(), temporary, card, calibration
                    )
                    VerifyReport.of(spec.name, output, report, agreement_report, conversion).write(
                        report_path
                    )
                    _raise_for_disagreement(agreement_report, labels, random_init=not weights_path)
    return OnnxExportResult(
        output,
        card,
        report,
        report_path,
        agreement=agreement_report,
        conversion=conversion,
        rewrites=spec.rewrites,
    )


def _verify_float32(
    reference: KerasReference, path: Path, output: Path, report_path: Path, conversion: Conversion
) -> VerificationReport:
    """The float32 graph at ``path`` against Keras, exactly; the report is written either way."""
    status(f"verifying against Keras on {len(reference.names)} photos")
    exported = load_onnx(path, provider="cpu")  # Keras runs on CPU too
    report = verify(reference, exported, DEFAULT_BATCH_SIZES)
    report.onnx = str(output)
    VerifyReport.of(report.model, output, report, conversion=conversion).write(report_path)
    report.raise_for_failure(reference.labels)
    return report


def _make_lower_precision(float32: Path, output: Path, card: ModelCard, calibration_pixels) -> None:
    """The int8 or fp16 variant of the verified float32 graph, written to ``output``."""
    status(f"making the {card.precision} model")
    feeds = _calibration_feeds(float32, calibration_pixels) if is_int8(card.precision) else ()
    lower_precision(float32, output, card, feeds)


def _measure_agreement(
    reference: KerasReference, path: Path, card: ModelCard, calibration
) -> AgreementReport:
    status(f"measuring {card.precision}'s agreement with Keras on {len(reference.names)} photos")
    variant = load_onnx(path, provider="cpu")
    return agreement(reference, variant, card.precision, DEFAULT_BATCH_SIZES, calibration)


def _raise_for_disagreement(report: AgreementReport, labels, random_init: bool) -> None:
    try:
        report.raise_for_failure(labels)
    except VerificationError as error:
        if not random_init:
            raise
        raise VerificationError(
            f"{error}; random-init weights say little about {report.precision}'s agreement "
            "(their logits can be too small for it): export trained weights, or pass --no-verify"
        ) from None


def _calibration_feeds(model_path: Path, pixels) -> Iterator[dict]:
    """int8's calibration inputs: each photo fed to the float32 graph as at inference."""
    model = load_onnx(model_path, provider="cpu")
    for i in range(len(pixels)):
        yield model.runner.feed(preprocess(pixels[i : i + 1], model.preprocessing))


def _convert(
    keras_model, card: ModelCard, batch: int | None, has_logits: bool, check: bool
) -> tuple[Any, ModelCard, Conversion]:
    """The ONNX graph, with the softmax, the requested extras and the metadata; the card as
    written in it; and which converter made it (its ``proto`` dropped: it is the graph).

    ``has_logits``: the model outputs logits (``logits_model``), so the graph gets an ONNX
    Softmax here.
    """
    from onnx import helper

    from zoo.exporters.embed import add_top_k, embed_preprocessing

    conversion = keras_to_onnx(
        keras_model,
        opset=card.opset,
        batch=batch,
        input_name=card.input_name,
        output_name=card.logits_name if has_logits else card.probabilities_name,
        input_shape=(*card.input.size, 3),
        check=check,
    )
    proto, conversion = conversion.proto, dataclasses.replace(conversion, proto=None)
    if has_logits:
        _append_softmax(proto, card.logits_name, card.probabilities_name)
    else:
        card = dataclasses.replace(card, logits_name=None)
    if card.embeds_preprocessing:
        embed_preprocessing(proto, card.input.preprocess, card.input_name)
    if card.top_k:
        add_top_k(proto, card.probabilities_name, card.top_k)
    if card.input_layout == "NCHW":
        input_as_nchw(proto, card.input_name)
    proto.producer_name, proto.producer_version = "zoo", __version__
    proto.doc_string = f"{card.model}, exported by zoo {__version__}"
    helper.set_model_props(proto, {METADATA_KEY: card.to_json()})
    return proto, card, conversion


def _append_softmax(proto, logits: str, probabilities: str) -> None:
    """Add ``probabilities = Softmax(logits)`` and expose both as graph outputs."""
    from onnx import helper

    graph = proto.graph
    [logits_output] = [o for o in graph.output if o.name == logits]
    graph.node.append(helper.make_node("Softmax", [logits], [probabilities], axis=-1))
    probabilities_output = graph.output.add()
    probabilities_output.CopyFrom(logits_output)
    probabilities_output.name = probabilities
