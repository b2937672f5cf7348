"""``zoo verify MODEL --endpoint URL``: a deployed model checked against its source, through
the Open Inference Protocol, by the export verification's rules.

The endpoint's model metadata says what to send: encoded images for a BYTES input, pixels for
UINT8, preprocessed values (the model's own preprocessing, from its card) for FP32, FP16 or
FP64, in the declared layout (NHWC or NCHW) and batch. What it declares is checked against the
model first (input shape and type, an output of one score per class); then the verification
photos go through every input it declares, at batch 1 and a larger batch, and each photo's
answer is compared with the reference's (Keras, or a verified ``.onnx`` run here): the top-5
identical, order included, and the scores within the tolerance, relative to the logits' scale
when the endpoint answers logits, absolute when it answers probabilities. With the
classification extension, the labels it gives each class are checked against the model's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from zoo.base.errors import ZooError
from zoo.base.progress import status
from zoo.exporters.errors import VerificationError
from zoo.exporters.keras_outputs import (
    DEFAULT_BATCH_SIZES,
    TOP,
    KerasReference,
    batches,
    keras_reference,
    label_names,
    load_photos,
    logits_model,
)
from zoo.exporters.oip_client import DTYPES, EndpointError, OipClient, Tensor, shown
from zoo.exporters.verify import DEFAULT_TOLERANCE, VerificationReport, image_check
from zoo.exporters.verify_report import VerifyReport
from zoo.model.card import VerifiedOn
from zoo.model.input_config import InputConfig
from zoo.model.labels import LabelList
from zoo.model.spec import ModelSpec
from zoo.plugin.registry import get_registry
from zoo.runtime.images import read_bytes
from zoo.runtime.onnx_file import load_onnx
from zoo.runtime.preprocessing import luma, preprocess
from zoo.runtime.scores import softmax
from zoo.sources.keras_model import build_keras_model
from zoo.sources.weights import resolve_weights

DEFAULT_TIMEOUT = 30.0
"""Seconds for each call to the endpoint."""
FLOATS = ("FP16", "FP32", "FP64")
BINARY_EXTENSION, CLASSIFICATION_EXTENSION = "binary_tensor_data", "classification"
PROBABILITIES, LOGITS = "probabilities", "logits"
PROBABILITY_SUM = {"FP16": 1e-2, "FP32": 1e-3, "FP64": 1e-3}
"""How far from 1 a row of probabilities may sum, by the output's datatype."""


@dataclass
class Reference:
    """What the endpoint's answers are compared with, computed here once."""

    model: str
    """The model's own name (what the endpoint is asked for unless told another)."""
    description: str
    """``Keras``, or the .onnx file and whether it was verified against Keras."""
    config: InputConfig
    """The model's own input settings: what the endpoint is sent is made from them."""
    outputs: KerasReference
    photos: list[Path]


def keras_side(spec: ModelSpec, weights: str, photos: Sequence[Path]) -> Reference:
    """Keras's outputs on the photos, with ``weights`` (a name or a file)."""
    registry = get_registry()
    config = registry.input_config(spec)
    pixels = load_photos(photos, config)
    keras_model = build_keras_model(spec, resolve_weights(spec, weights))
    status(f"running {spec.name} on Keras on {len(photos)} photos")
    with logits_model(keras_model, spec) as (keras_model, has_logits):
        outputs = keras_reference(
            keras_model, config.preprocess, config.labels, photos, pixels, has_logits
        )
    return Reference(spec.name, "Keras", config, outputs, list(photos))


def onnx_side(path: Path, photos: Sequence[Path], model: str | None = None) -> Reference:
    """A float32 ``.onnx`` export's outputs on the photos, run here on ONNX Runtime's CPU;
    ``model``: the model it must be an export of."""
    exported = load_onnx(path, provider="cpu")
    card = exported.card
    if model is not None and card.model != model:
        raise ZooError(f"{path} holds {card.model!r}, not {model!r}")
    if card.precision != "fp32":
        raise ZooError(
            f"{path} computes in {card.precision}; give the float32 export as the reference"
        )
    pixels = load_photos(photos, card.input)
    probabilities, logits = exported.runner.outputs(preprocess(pixels, exported.preprocessing))
    names = [Path(p).name for p in photos]
    outputs = KerasReference(
        names, pixels, card.input.preprocess, card.input.labels, probabilities, logits
    )
    return Reference(card.model, _verified(path), card.input, outputs, list(photos))


def _verified(path: Path) -> str:
    """The reference file, and what its verification report says."""
    report_path = path.with_suffix(".verify.json")
    if not report_path.is_file():
        return f"{path} on ONNX Runtime (not verified: no {report_path.name})"
    try:
        passed = VerifyReport.read(report_path).passed
    except (ValueError, KeyError, OSError) as error:
        raise ZooError(f"{report_path}: not a verification report ({error})") from None
    if not passed:
        raise ZooError(f"{path} failed its own verification ({report_path}): not a reference")
    return f"{path} on ONNX Runtime (verified against Keras)"


@dataclass(frozen=True)
class InputPlan:
    """How the photos are sent through one of the endpoint's inputs."""

    name: str
    datatype: str
    shape: list[int]
    """As declared, -1 where any size goes."""
    layout: str | None
    """NHWC or NCHW for pixels and values; None for encoded images (BYTES)."""
    channels: int = 3

    @property
    def batch(self) -> int | None:
        """The one batch size the endpoint takes, or None for any."""
        return self.shape[0] if self.shape and self.shape[0] > 0 else None

    def describe(self) -> str:
        return f"{self.name} ({self.datatype}{', ' + self.layout if self.layout else ''})"


@dataclass
class LabelCheck:
    """One photo's top classes as the classification extension labelled them, against the
    model's labels for the same classes."""

    image: str
    model_labels: list[str]
    endpoint_labels: list[str]

    @property
    def agrees(self) -> bool:
        return self.model_labels == self.endpoint_labels


@dataclass
class EndpointReport:
    url: str
    model: str
    """The model's name on the endpoint."""
    reference: str
    tolerance: float
    binary: bool
    """Whether tensors went through the binary tensor data extension."""
    extensions: list[str] = field(default_factory=list)
    scores: list[str] = field(default_factory=list)
    """What the endpoint answered: probabilities, logits (or, oddly, both by turns)."""
    inputs: dict[str, VerificationReport] = field(default_factory=dict)
    """Per input, by its description: the photos compared through it."""
    labels: list[LabelCheck] | None = None
    """None: the endpoint has no classification extension, so its labels were not seen."""
    problems: list[str] = field(default_factory=list)
    """What the endpoint declares or answers that does not fit the model."""

    def failures(self) -> list[tuple[str, object]]:
        found = [(name, check) for name, r in self.inputs.items() for check in r.failures()]
        return found + [("labels", c) for c in self.labels or [] if not c.agrees]

    @property
    def passed(self) -> bool:
        compared = bool(self.inputs) and all(r.checks for r in self.inputs.values())
        return not self.problems and compared and not self.failures()

    @property
    def max_relative_diff(self) -> float:
        return max((r.max_relative_diff for r in self.inputs.values()), default=0.0)

    def to_dict(self) -> dict:
        return {
            "endpoint": self.url,
            "model": self.model,
            "reference": self.reference,
            "passed": self.passed,
            "tolerance": self.tolerance,
            "max_relative_diff": self.max_relative_diff,
            "scores": self.scores,
            "binary_tensor_data": self.binary,
            "extensions": self.extensions,
            "problems": self.problems,
            "labels_checked": self.labels is not None,
            "verified_on": VerifiedOn.here().to_dict(),
            "inputs": {
                name: {k: v for k, v in r.to_dict().items() if k not in ("model", "onnx")}
                for name, r in self.inputs.items()
            },
            "labels": None if self.labels is None else [asdict(c) for c in self.labels],
        }

    def summary(self) -> str:
        """One line: the verdict and what it rests on."""
        reports = list(self.inputs.values())
        photos = len({c.image for r in reports for c in r.checks})
        sizes = ", ".join(map(str, sorted({c.batch for r in reports for c in r.checks})))
        verdict = "top-5 identical" if self.passed else "FAILED"
        through = ", ".join(self.inputs) + (" in binary" if self.binary else " in JSON")
        labels = (
            "labels checked (classification extension)"
            if self.labels is not None
            else "labels not seen (no classification extension)"
        )
        on_logits = any(c.max_abs_diff_logits is not None for r in reports for c in r.checks)
        closeness = (
            f"max |diff| of logits {self.max_relative_diff:.2g} of their scale"
            if on_logits
            else f"max |diff| of probabilities {self.max_relative_diff:.2g}"
        )
        return (
            f"{self.url} model {self.model!r} against {self.reference} on {photos} photos at "
            f"batch sizes {sizes} through {through}: {verdict}; it answers "
            f"{' and '.join(self.scores) or 'nothing'}, {closeness} (tolerance "
            f"{self.tolerance:g}); {labels}"
        )

    def raise_for_failure(self, labels: LabelList) -> None:
        if self.problems:
            raise VerificationError(f"{self.url} model {self.model!r}: {self.problems[0]}")
        if not self.passed and not self.failures():
            raise VerificationError(f"{self.url} model {self.model!r}: nothing was compared")
        for where, check in self.failures():
            if isinstance(check, LabelCheck):
                raise VerificationError(
                    f"{self.url} model {self.model!r} labels the classes otherwise on "
                    f"{check.image}: its top-{len(check.endpoint_labels)} "
                    f"[{', '.join(check.endpoint_labels)}] are the model's "
                    f"[{', '.join(check.model_labels)}] (classification extension)"
                )
            what = "probabilities" if check.max_abs_diff_logits is None else "logits"
            raise VerificationError(
                f"{self.url} model {self.model!r} disagrees with {self.reference} on "
                f"{check.image} (input {where}, batch {check.batch}): reference top-5 "
                f"{label_names(check.keras_top5, labels)}, endpoint top-5 "
                f"{label_names(check.onnx_top5, labels)}, max |diff| of {what} "
                f"{check.relative_diff:.3g}"
                + (" of their scale" if what == "logits" else "")
                + f" (tolerance {self.tolerance:g})"
            )


def verify_endpoint(
    client: OipClient,
    model: str,
    reference: Reference,
    binary: bool | None = None,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> EndpointReport:
    """Send the reference's photos to ``model`` at the endpoint and compare its answers;
    ``binary``: use the binary tensor data extension (None: when the server offers it)."""
    extensions = _extensions(client.server_metadata(), client.url)
    metadata = client.model_metadata(model)
    if binary is None:
        binary = BINARY_EXTENSION in extensions
    report = EndpointReport(
        client.url, model, reference.description, tolerance, binary, sorted(extensions)
    )
    if not client.model_ready(model):
        report.problems.append("the model is not ready (/ready did not answer 200)")
        return report
    config = reference.config
    plans, output, report.problems = plan(metadata, config, client.url)
    if report.problems:
        return report
    for input_plan in plans:
        status(f"sending {len(reference.photos)} photos to {model} through {input_plan.name}")
        report.inputs[input_plan.describe()] = _compare(
            client, report, input_plan, output, reference, batch_sizes
        )
        if report.problems:
            return report
    if CLASSIFICATION_EXTENSION in extensions:
        report.labels = _label_checks(client, report, plans[0], output, reference)
    return report


def _extensions(document: dict, url: str) -> set[str]:
    extensions = document.get("extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        raise EndpointError(f"{url}/v2: extensions {shown(extensions)} is not a list of names")
    return set(extensions)


def plan(
    metadata: dict, config: InputConfig, url: str
) -> tuple[list[InputPlan], str | None, list[str]]:
    """The inputs to send the photos through, the output to read, and what in the metadata
    does not fit the model (each a phrase)."""
    inputs = _tensors(metadata, "inputs", url)
    outputs = _tensors(metadata, "outputs", url)
    problems, plans = [], []
    if not inputs:
        problems.append("its metadata declares no inputs")
    for tensor in inputs:
        found = _input_plan(tensor, config)
        if isinstance(found, str):
            problems.append(found)
        else:
            plans.append(found)
    output = _output_name(outputs, len(config.labels))
    if output is None:
        declared = "; ".join(_declared(t) for t in outputs) or "none"
        problems.append(
            f"no output of {len(config.labels)} scores, one per class, as the model has "
            f"(it declares: {declared})"
        )
    return plans, output, problems


def _tensors(metadata: dict, key: str, url: str) -> list[dict]:
    tensors = metadata.get(key)
    if not isinstance(tensors, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("name"), str)
        and isinstance(t.get("datatype"), str)
        and isinstance(t.get("shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in t["shape"])
        for t in tensors
    ):
        raise EndpointError(
            f"{url}: the model metadata's {key} are not the protocol's (name, datatype, shape): "
            f"{shown(tensors)}"
        )
    return tensors


def _declared(tensor: dict) -> str:
    return f"{shown(tensor['name'])} {shown(tensor['datatype'])} {tensor['shape']}"


def _input_plan(tensor: dict, config: InputConfig) -> InputPlan | str:
    """How to send photos through ``tensor``, or why they cannot be."""
    name, datatype, shape = tensor["name"], tensor["datatype"], tensor["shape"]
    height, width = config.size
    if datatype == "BYTES":
        if len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, -1)):
            return InputPlan(name, datatype, shape, None)
        return f"input {_declared(tensor)} is BYTES of shape {shape}; encoded images are [N]"
    if datatype not in ("UINT8", *FLOATS):
        return (
            f"input {_declared(tensor)}: zoo sends BYTES (encoded images), UINT8 (pixels) or "
            "FP16/FP32/FP64 (preprocessed values)"
        )
    channels = 3 if datatype == "UINT8" else config.preprocess.channels
    for layout, wanted in (
        ("NHWC", (height, width, channels)),
        ("NCHW", (channels, height, width)),
    ):
        if len(shape) == 4 and all(d in (-1, w) for d, w in zip(shape[1:], wanted, strict=True)):
            return InputPlan(name, datatype, shape, layout, channels)
    return (
        f"input {_declared(tensor)} does not fit the model, which takes [N, {height}, {width}, "
        f"{channels}] (NHWC) or [N, {channels}, {height}, {width}] (NCHW)"
    )


def _output_name(outputs: list[dict], classes: int) -> str | None:
    """The output that holds one score per class: ``probabilities`` or ``logits`` if it is
    one of several that fit, else the first that fits."""
    fits = [
        o["name"]
        for o in outputs
        if o["datatype"] in FLOATS and o["shape"] and o["shape"][-1] in (classes, -1)
    ]
    for preferred in ("probabilities", "logits"):
        if preferred in fits:
            return preferred
    return fits[0] if fits else None


def _tensor_for(plan: InputPlan, reference: Reference, index: list[int]) -> Tensor:
    """What the endpoint is sent for the photos at ``index``, as ``plan`` says."""
    count = len(index)
    if plan.datatype == "BYTES":
        shape = [count] if len(plan.shape) == 1 else [count, 1]
        return Tensor(plan.name, "BYTES", shape, [read_bytes(reference.photos[i]) for i in index])
    pixels = reference.outputs.pixels[index]
    if plan.datatype == "UINT8":
        values = luma(pixels) if plan.channels == 1 else pixels
    else:
        values = preprocess(pixels, reference.config.preprocess).astype(DTYPES[plan.datatype])
    if plan.layout == "NCHW":
        values = np.ascontiguousarray(values.transpose(0, 3, 1, 2))
    return Tensor(plan.name, plan.datatype, list(values.shape), values)


def _batches(plan: InputPlan, batch_sizes: Sequence[int], count: int) -> Iterator[list[int]]:
    """The photos' indices, a batch at a time, at each size (the one the endpoint takes, when
    it declares one); a batch's own photos repeat after it to fill it."""
    for size in batch_sizes if plan.batch is None else (plan.batch,):
        for index in batches(count, size):
            yield index + [index[i % len(index)] for i in range(size - len(index))]


def _distinct(index: list[int]) -> list[int]:
    """The batch's photos, each once: they lead it, repeats follow."""
    return list(dict.fromkeys(index))


def _compare(
    client: OipClient,
    report: EndpointReport,
    plan: InputPlan,
    output: str,
    reference: Reference,
    batch_sizes: Sequence[int],
) -> VerificationReport:
    compared = VerificationReport(report.model, f"{report.url} {plan.describe()}", report.tolerance)
    outputs = reference.outputs
    classes = len(reference.config.labels)
    for index in _batches(plan, batch_sizes, len(outputs.names)):
        sent = [_tensor_for(plan, reference, index)]
        answer = client.infer(report.model, sent, [{"name": output}], report.binary)
        found = _scores(answer, output, len(index), classes, report)
        if found is None:
            return compared
        scores, kind = found
        for row, i in enumerate(_distinct(index)):
            if not np.isfinite(scores[row]).all():
                report.problems.append(
                    f"it answered NaN or infinity for {outputs.names[i]} (batch {len(index)})"
                )
                return compared
            compared.checks.append(_photo_check(outputs, i, scores[row], kind, len(index)))
    return compared


def _scores(
    answer: dict[str, Tensor], output: str, count: int, classes: int, report: EndpointReport
) -> tuple[np.ndarray, str] | None:
    """The answered scores as (count, classes) float64, and whether they are probabilities
    or logits; None, with a problem, when they are not scores."""
    tensor = answer.get(output)
    if tensor is None:
        report.problems.append(f"its answer has no output {output!r} (it has {sorted(answer)})")
        return None
    if tensor.datatype not in FLOATS:
        report.problems.append(f"output {output!r} came back {tensor.datatype}, not scores")
        return None
    values = np.asarray(tensor.data, np.float64)
    if values.size != count * classes or not values.shape or values.shape[0] != count:
        report.problems.append(
            f"output {output!r} came back of shape {tensor.shape} for {count} photos; the "
            f"model has {classes} classes"
        )
        return None
    values = values.reshape(count, classes)
    sums = np.abs(values.sum(axis=1) - 1) <= PROBABILITY_SUM[tensor.datatype]
    kind = PROBABILITIES if (values >= 0).all() and sums.all() else LOGITS
    if kind not in report.scores:
        report.scores.append(kind)
    return values, kind


def _photo_check(outputs: KerasReference, i: int, scores: np.ndarray, kind: str, batch: int):
    """One photo's comparison, by the export verification's rule: on the logits when both
    sides have them, else on the probabilities."""
    name, expected = outputs.names[i], outputs.probabilities[i]
    if kind == PROBABILITIES:
        return image_check(name, batch, expected, scores)
    if outputs.logits is None:
        return image_check(name, batch, expected, softmax(scores))
    return image_check(name, batch, expected, softmax(scores), outputs.logits[i], scores)


def _label_checks(
    client: OipClient, report: EndpointReport, plan: InputPlan, output: str, reference: Reference
) -> list[LabelCheck]:
    """Each photo's top classes through the classification extension (``score:index:label``),
    their labels against the model's for the same class indices."""
    outputs, labels = reference.outputs, reference.config.labels
    k = min(TOP, len(labels))
    checks = []
    for index in _batches(plan, [len(outputs.names)], len(outputs.names)):
        answer = client.infer(
            report.model,
            [_tensor_for(plan, reference, index)],
            [{"name": output, "parameters": {"classification": k}}],
            report.binary,
        )
        tensor = answer.get(output)
        if tensor is None or tensor.datatype != "BYTES" or tensor.shape != [len(index), k]:
            got = "nothing" if tensor is None else f"{tensor.datatype} {tensor.shape}"
            report.problems.append(
                f"asked for each photo's top {k} (classification extension), it answered {got}"
            )
            return checks
        for row, i in enumerate(_distinct(index)):
            entries = [_classified(e, len(labels)) for e in tensor.data[row * k : (row + 1) * k]]
            if None in entries:
                report.problems.append(
                    f"its classification for {outputs.names[i]} is not score:index:label: "
                    f"{shown(b' '.join(tensor.data[row * k : (row + 1) * k]))}"
                )
                return checks
            checks.append(
                LabelCheck(
                    outputs.names[i],
                    [labels[c][1] for c, _ in entries],
                    [label for _, label in entries],
                )
            )
    return checks


def _classified(entry: bytes, classes: int) -> tuple[int, str] | None:
    """(index, label) of one ``score:index:label``; None if it is not that."""
    try:
        score, index, label = entry.decode().split(":", 2)
        float(score)
        index = int(index)
    except ValueError:
        return None
    return (index, label) if 0 <= index < classes else None
