"""``zoo verify MODEL FILE.onnx --backends onnx,openvino,opencv``: one export checked against
Keras on each runtime, at each precision asked for, in one table.

Keras runs once. Each runtime then runs the file on the same photos at batch 1 and 8: a
configuration that computes in float32 must give Keras's top-5 exactly (``verify``); a reduced
one (OpenVINO's bf16, an int8 file) is measured by its agreement with float32 Keras, against
the thresholds of its precision (``agreement``), as an int8 export is. Each row names the
runtime's version and the precision the runtime reports it ran at, not the one asked for.
A configuration the runtime cannot run here (not installed, a precision the CPU lacks) is
skipped with one line; if none can run, that line is the error.

``zoo bench --precisions`` measures each configuration's agreement the same way, against the
verified float32 export on ONNX Runtime instead of Keras (``export_reference``): no
TensorFlow, and the same answers, since that export gives Keras's top-5 exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.base.errors import BackendUnavailable, ZooError
from zoo.base.progress import status
from zoo.exporters.agreement import AgreementReport, agreement
from zoo.exporters.errors import VerificationError
from zoo.exporters.keras_outputs import DEFAULT_BATCH_SIZES, KerasReference, load_photos
from zoo.exporters.verify import VerificationReport, verify
from zoo.exporters.verify_file import keras_reference_for
from zoo.model.labels import LabelList
from zoo.model.spec import ModelSpec
from zoo.runtime.api import load
from zoo.runtime.bench import BenchResult, runtime_version
from zoo.runtime.cpu_check import acknowledge
from zoo.runtime.model import Model
from zoo.runtime.onnx_metadata import file_card
from zoo.runtime.preprocessing import preprocess


@dataclass
class RuntimeCheck:
    backend: str
    runtime: str
    """The runtime and its version, e.g. "OpenVINO 2026.4.1"."""
    precision: str
    """What the runtime reports it computed in."""
    report: VerificationReport | AgreementReport

    @property
    def check(self) -> str:
        return "exact" if isinstance(self.report, VerificationReport) else "agreement"

    @property
    def top1_agreement(self) -> float:
        if isinstance(self.report, AgreementReport):
            return self.report.top1_agreement
        return float(np.mean([c.keras_top5[0] == c.onnx_top5[0] for c in self.report.checks]))

    @property
    def top5(self) -> str:
        """Exact: the share of photos with Keras's top-5 in order; agreement: the mean overlap."""
        if isinstance(self.report, AgreementReport):
            return f"overlap {self.report.top5_overlap:.2f}"
        identical = np.mean([c.top5_identical for c in self.report.checks])
        return f"{identical:.0%} identical"

    @property
    def max_probability_diff(self) -> float:
        if isinstance(self.report, AgreementReport):
            return self.report.max_probability_diff
        return self.report.max_abs_diff_probabilities

    def row(self) -> list[str]:
        verdict = "passes" if self.report.passed else "FAILS"
        return [
            self.backend,
            self.runtime,
            self.precision,
            self.check,
            f"{self.top1_agreement:.0%}",
            self.top5,
            f"{self.max_probability_diff:.2g}",
            verdict,
        ]

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "runtime": self.runtime,
            "precision": self.precision,
            "check": self.check,
            "passed": self.report.passed,
            "top1_agreement": self.top1_agreement,
            "max_probability_diff": self.max_probability_diff,
            "report": self.report.to_dict(),
        }


HEADER = ["BACKEND", "RUNTIME", "PRECISION", "CHECK", "TOP-1", "TOP-5", "MAX |P DIFF|", "RESULT"]


@dataclass
class RuntimesReport:
    model: str
    onnx: str
    checks: list[RuntimeCheck] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """One line per configuration that could not run here, and why."""

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.report.passed for check in self.checks)

    def rows(self) -> list[list[str]]:
        return [check.row() for check in self.checks]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "onnx": self.onnx,
            "passed": self.passed,
            "runtimes": [check.to_dict() for check in self.checks],
            "skipped": self.skipped,
        }

    def raise_for_failure(self, labels: LabelList) -> None:
        for check in self.checks:
            if not check.report.passed:
                try:
                    check.report.raise_for_failure(labels)
                except VerificationError as error:
                    raise VerificationError(
                        f"on {check.runtime} at {check.precision}: {error}"
                    ) from None


def verify_runtimes(
    spec: ModelSpec,
    path: Path,
    backends: Sequence[str],
    precisions: Sequence[str | None] = (None,),
    weights: str | None = None,
    images: Sequence[Path] = (),
) -> RuntimesReport:
    """Verify the export at ``path`` against Keras on each backend at each precision (None:
    the file's own)."""
    acknowledge(path)  # no warning to run 'zoo verify': this is it
    card = file_card(path)
    reference = keras_reference_for(spec, card, path, weights, images)
    report = RuntimesReport(spec.name, str(path))
    first_problem = None
    for backend in backends:
        for precision in precisions:
            asked = precision or card.precision
            try:
                model = load(path, backend, provider="cpu", precision=precision)
            except BackendUnavailable as error:
                first_problem = first_problem or error
                line = f"zoo: {backend} at {asked} skipped: {error}"
                report.skipped.append(line)
                print(line, file=sys.stderr)
                continue
            status(f"verifying {path} on {backend} at {model.precision}")
            checked = (
                verify(reference, model)
                if model.precision == "fp32"
                else agreement(reference, model, model.precision, DEFAULT_BATCH_SIZES)
            )
            report.checks.append(
                RuntimeCheck(backend, runtime_version(model), model.precision, checked)
            )
            del model
    if not report.checks:
        raise first_problem or ZooError("no runtime to verify on")
    return report


def export_reference(reference: Model, photos: Sequence[Path]) -> KerasReference:
    """What ``agreement`` compares a configuration with: the float32 export ``reference`` (on
    ONNX Runtime) on ``photos``, probabilities and, where the file has them, logits."""
    pixels = load_photos(photos, reference.input)
    probabilities, logits = reference.runner.outputs(preprocess(pixels, reference.preprocessing))
    return KerasReference(
        [Path(photo).name for photo in photos],
        pixels,
        reference.preprocessing,
        reference.labels,
        probabilities.astype(np.float64),
        None if logits is None else logits.astype(np.float64),
    )


def measured_agreement(reference: KerasReference, model: Model) -> AgreementReport:
    """``model``'s agreement with the reference, at batch 1 and 8, against its precision's
    thresholds (fp32: the same top-5 classes)."""
    return agreement(reference, model, model.precision, DEFAULT_BATCH_SIZES)


def fastest(
    results: Sequence[BenchResult], agrees: dict[tuple[str, str], bool]
) -> dict[int, BenchResult]:
    """Per batch size, the fastest configuration whose agreement holds (``agrees``, keyed by
    backend and precision)."""
    best: dict[int, BenchResult] = {}
    for result in results:
        if not agrees.get((result.backend, result.precision)):
            continue
        if result.batch not in best or result.images_per_s > best[result.batch].images_per_s:
            best[result.batch] = result
    return best
