"""``zoo export MODEL --onnx``: a registered model as a verified, self-describing ONNX file.

Steps: check the destination (before any heavy work), build the Keras model, convert it with
the final softmax removed (so the graph outputs ``logits`` and, through an ONNX ``Softmax``,
``probabilities``), add what was asked for (preprocessing for uint8 input, top-k outputs),
store the model card in ``metadata_props``, write to a temporary file beside the destination,
verify it against Keras; for int8 or fp16, make that variant from the verified float32 graph
and measure its agreement with Keras; only then rename it into place. Failure, Ctrl-C or
SIGTERM at any step leaves nothing at the destination.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zoo import __version__, hookimpl
from zoo.artifact import METADATA_KEY, ModelCard, TopKOutputs, VerifiedOn
from zoo.cpu_check import acknowledge, reverified_line
from zoo.errors import ZooError
from zoo.files import atomic_path
from zoo.keras_model import build_keras_model
from zoo.labels import resolve_labels
from zoo.onnx_file import import_onnxruntime, load_onnx
from zoo.preprocessing import preprocess
from zoo.progress import status
from zoo.registry import get_registry
from zoo.samples import image_files, verification_images
from zoo.specs import ExporterSpec, ModelSpec
from zoo.weights import file_digest, resolve_weights

from .agreement import AgreementReport, agreement
from .precision import PRECISIONS, is_int8, lower_precision
from .verify import (
    DEFAULT_BATCH_SIZES,
    VerificationError,
    VerificationReport,
    keras_reference,
    load_photos,
    softmax_removed,
    verify,
)

DEFAULT_OPSET = 17
"""Well supported by tf2onnx and by every ONNX Runtime of the last years."""
TOP_K_MIN_OPSET = 11
"""``TopK`` with k as an input and a defined order for ties."""


class ExportError(ZooError):
    """The export could not be made or written."""


@dataclass
class ExportResult:
    path: Path
    card: ModelCard
    report: VerificationReport | None
    report_path: Path | None
    triton: Path | None = None
    """The Triton model repository entry holding the file, when exported into one."""
    agreement: AgreementReport | None = None
    """How a lower-precision (int8, fp16) export agrees with Keras."""

    def to_dict(self) -> dict:
        return {
            "onnx": str(self.path),
            "model": self.card.model,
            "opset": self.card.opset,
            "weights": self.card.weights,
            "weights_sha256": self.card.weights_sha256,
            "size_bytes": self.path.stat().st_size,
            "verified": self.report.passed if self.report else None,
            "verification_report": str(self.report_path) if self.report_path else None,
            "max_abs_diff_logits": self.report.max_abs_diff_logits if self.report else None,
            "max_relative_diff": self.report.max_relative_diff if self.report else None,
            "input_dtype": self.card.input_dtype,
            "embedded_preprocessing": self.card.embeds_preprocessing,
            "top_k": self.card.top_k.k if self.card.top_k else None,
            "triton": str(self.triton) if self.triton else None,
            "precision": self.card.precision,
            "agreement": _agreement_figures(self.agreement) if self.agreement else None,
        }

    def summary(self) -> str:
        size = self.path.stat().st_size
        size = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
        facts = [size, f"opset {self.card.opset}"]
        if self.card.embeds_preprocessing:
            facts.append(f"uint8 input, {self.card.preprocess.name} preprocessing inside")
        if self.card.top_k:
            facts.append(f"top-{self.card.top_k.k} outputs")
        if self.card.precision != "fp32":
            facts.append(self.card.precision)
        lines = [f"wrote {self.path} ({', '.join(facts)})"]
        if self.report is None:
            lines[0] += ", not verified (--no-verify)"
        else:
            lines.append(("float32 graph " if self.agreement else "") + self.report.summary())
            if self.agreement:  # measured only after the float32 graph passed
                lines.append(self.agreement.summary())
            lines.append(f"report: {self.report_path}")
        if self.triton:
            lines.append(f"Triton model repository entry: {self.triton}")
        return "\n".join(lines)


def _agreement_figures(report: AgreementReport) -> dict:
    figures = ("passed", "top1_agreement", "top5_overlap", "max_probability_diff", "thresholds")
    document = report.to_dict()
    return {name: document[name] for name in figures}


def check_destination(path: Path) -> None:
    """One clear line now, rather than a failure after minutes of work."""
    if path.is_dir():
        raise ExportError(f"{path}: is a directory; give a file name such as model.onnx")
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{path}: folder {folder} is not writable")


def export_onnx(
    spec: ModelSpec,
    output: Path,
    weights: str | os.PathLike = "imagenet",
    opset: int | None = None,
    batch: int | None = None,
    images: Sequence[Path] = (),
    verify_output: bool = True,
    embed_preprocessing: bool = False,
    top_k: int | None = None,
    precision: str = "fp32",
    calibration: Sequence[Path] = (),
) -> ExportResult:
    """Export ``spec`` to ``output``; verified on the sample photos plus ``images``.

    ``embed_preprocessing``: the graph takes raw uint8 pixels and preprocesses them itself.
    ``top_k``: add ``top_k_scores`` and ``top_k_indices`` outputs (``TopK`` on probabilities).
    ``precision``: ``fp32``, or ``int8`` (calibrated on ``calibration``, default the sample
    photos) or ``fp16``; the float32 graph is verified exactly first, then the variant's
    agreement with Keras is measured against reported thresholds.
    """
    opset = opset or DEFAULT_OPSET
    check_destination(output)
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if top_k is not None and opset < TOP_K_MIN_OPSET:
        raise ExportError(f"--top-k needs opset {TOP_K_MIN_OPSET} or newer, not {opset}")
    registry = get_registry()
    preprocessing = registry.preprocessor(spec)
    labels = resolve_labels(spec.labels)
    if top_k is not None and not 1 <= top_k <= len(labels):
        raise ExportError(f"--top-k must be between 1 and {len(labels)} (the classes), not {top_k}")
    weights_path = resolve_weights(spec, weights)
    card = ModelCard(
        model=spec.name,
        input_size=spec.input_size,
        preprocess=preprocessing,
        labels=labels,
        weights=_weights_source(weights, weights_path),
        weights_sha256=file_digest(weights_path) if weights_path else None,
        zoo_version=__version__,
        opset=opset,
        input_dtype="uint8" if embed_preprocessing else "float32",
        top_k=TopKOutputs(top_k) if top_k else None,
        verified_on=VerifiedOn.here() if verify_output else None,
    )
    photos = [*verification_images(spec), *images] if verify_output else []
    pixels = load_photos(photos, spec.input_size) if photos else None  # bad files fail now
    if is_int8(precision):
        calibration = calibration or verification_images(spec)
        calibration_pixels = load_photos(calibration, spec.input_size)
    status(f"building {spec.name} in Keras")
    keras_model = build_keras_model(spec, weights_path)
    if verify_output:
        # Imported now rather than once the temporary file exists: Ctrl-C or SIGTERM in the
        # middle of importing a C extension can crash the interpreter on its way out, leaving
        # the file behind.
        import_onnxruntime()
    report = report_path = agreement_report = None
    with softmax_removed(keras_model) as has_logits, ThreadPoolExecutor(1) as pool:
        # Keras's side of the verification runs while the graph is converted and written: the
        # conversion is mostly Python, Keras's forward pass mostly outside the GIL.
        if verify_output:
            reference = pool.submit(
                keras_reference, keras_model, preprocessing, labels, photos, pixels, has_logits
            )
        status(f"converting {spec.name} to ONNX (opset {opset})")
        # Verification loads the file into ONNX Runtime, which validates it: no onnx.checker then.
        proto, card = _convert(keras_model, card, batch, has_logits, not verify_output)
        with (
            atomic_path(output) as temporary,
            tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch,
        ):
            float32 = temporary if precision == "fp32" else Path(scratch) / "float32.onnx"
            float32.write_bytes(proto.SerializeToString())  # onnx.save serialises twice
            del proto
            if verify_output:
                status(f"verifying against Keras on {len(photos)} photos")
                exported = load_onnx(float32, provider="cpu")  # Keras runs on CPU too
                report = verify(reference.result(), exported, DEFAULT_BATCH_SIZES)
                report.onnx = str(output)
                report_path = output.with_suffix(".verify.json")
                report.write(report_path)
                report.raise_for_failure(labels)
            if precision != "fp32":
                card = dataclasses.replace(card, precision=precision)
                status(f"making the {precision} model")
                feeds = (
                    _calibration_feeds(float32, calibration_pixels) if is_int8(precision) else ()
                )
                lower_precision(float32, temporary, card, feeds)
                if verify_output:
                    status(f"measuring {precision}'s agreement with Keras on {len(photos)} photos")
                    variant = load_onnx(temporary, provider="cpu")
                    agreement_report = agreement(
                        reference.result(), variant, precision, DEFAULT_BATCH_SIZES, calibration
                    )
                    report.write(report_path, agreement=agreement_report)
                    _raise_for_disagreement(agreement_report, labels, random_init=not weights_path)
    return ExportResult(output, card, report, report_path, agreement=agreement_report)


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


def _weights_source(requested: str | os.PathLike, path: Path | None) -> str:
    if path is None:
        return "none"
    return "imagenet" if requested in ("imagenet", "pretrained") else path.name


def _convert(
    keras_model, card: ModelCard, batch: int | None, has_logits: bool, check: bool
) -> tuple:
    """The ONNX graph, with the softmax, the requested extras and the metadata; and the card
    as written in it.

    ``has_logits``: the caller removed the model's final softmax (``softmax_removed``), so the
    graph computes logits and gets an ONNX Softmax here.
    """
    from onnx import helper

    from .convert import keras_to_onnx
    from .embed import add_top_k, embed_preprocessing

    proto = keras_to_onnx(
        keras_model,
        opset=card.opset,
        batch=batch,
        input_name=card.input_name,
        output_name=card.logits_name if has_logits else card.probabilities_name,
        input_shape=(*card.input_size, 3),
        check=check,
    )
    if has_logits:
        _append_softmax(proto, card.logits_name, card.probabilities_name)
    else:
        card = dataclasses.replace(card, logits_name=None)
    if card.embeds_preprocessing:
        embed_preprocessing(proto, card.preprocess, card.input_name)
    if card.top_k:
        add_top_k(proto, card.probabilities_name, card.top_k)
    proto.producer_name, proto.producer_version = "zoo", __version__
    proto.doc_string = f"{card.model}, exported by zoo {__version__}"
    helper.set_model_props(proto, {METADATA_KEY: card.to_json()})
    return proto, card


def _append_softmax(proto, logits: str, probabilities: str) -> None:
    """Add ``probabilities = Softmax(logits)`` and expose both as graph outputs."""
    from onnx import helper

    graph = proto.graph
    [logits_output] = [o for o in graph.output if o.name == logits]
    graph.node.append(helper.make_node("Softmax", [logits], [probabilities], axis=-1))
    probabilities_output = graph.output.add()
    probabilities_output.CopyFrom(logits_output)
    probabilities_output.name = probabilities


def export(spec: ModelSpec, output: Path, triton: Path | None = None, **options) -> ExportResult:
    """The registered ``onnx`` exporter: ``export_onnx`` to ``output``, or with ``triton`` (a
    Triton model repository) into the entry ``triton/MODEL`` instead."""
    if triton is None:
        return export_onnx(spec, output, **options)
    from .triton import export_to_triton

    return export_to_triton(
        spec.name, Path(triton), lambda path: export_onnx(spec, path, **options)
    )


@hookimpl
def register_exporters(register):
    register(
        ExporterSpec(
            "onnx", export=export, description="ONNX, verified against Keras on real photos"
        )
    )


def verify_file(
    spec: ModelSpec, path: Path, weights: str | None = None, images: Sequence[Path] = ()
) -> VerificationReport | AgreementReport:
    """Verify an existing export of ``spec`` against Keras with the weights it was made from:
    exactly for float32, by its agreement for an int8 or fp16 file."""
    registry = get_registry()
    acknowledge(path)  # no warning to run 'zoo verify': this is it
    exported = load_onnx(path, provider="cpu")
    card = exported.runner.card
    if card.model != spec.name:
        raise ExportError(f"{path} holds {card.model!r}, not {spec.name!r}")
    if weights is None:
        if card.weights not in ("imagenet", "none"):
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
    pixels = load_photos(photos, spec.input_size)
    keras_model = build_keras_model(spec, weights_path)
    status(f"verifying {path} against Keras on {len(photos)} photos")
    labels = resolve_labels(spec.labels)
    with softmax_removed(keras_model) as has_logits:
        reference = keras_reference(
            keras_model, registry.preprocessor(spec), labels, photos, pixels, has_logits
        )
    report_path = path.with_suffix(".verify.json")
    if card.precision == "fp32":
        report = verify(reference, exported)
        report.write(report_path)
        return report
    report = agreement(reference, exported, card.precision, DEFAULT_BATCH_SIZES)
    document = {"model": card.model, "onnx": str(path), "agreement": report.to_dict()}
    document["verified_on"] = VerifiedOn.here().to_dict()
    report_path.write_text(json.dumps(document, indent=2) + "\n")
    if line := reverified_line(card, report.passed):
        print(f"zoo: {line}", file=sys.stderr)
    return report


@hookimpl
def register_commands(cli):
    command = cli.add_parser("verify", help="check an exported .onnx against Keras on real photos")
    command.add_argument("model", help="model name or alias (see 'zoo list')")
    command.add_argument("onnx", type=Path, help="the exported .onnx file")
    command.add_argument(
        "--weights", help="Keras weights to compare with (default: those the file was made from)"
    )
    command.add_argument("--images", metavar="DIR", help="also verify on the photos in this folder")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from zoo.output import print_json

    spec = get_registry().model(args.model)
    images = image_files(Path(args.images)) if args.images else []
    report = verify_file(spec, args.onnx, args.weights, images)
    if args.json:
        print_json(report.to_dict())
    report.raise_for_failure(resolve_labels(spec.labels))
    if not args.json:
        print(f"{args.onnx}: {report.summary()}")
    return 0
