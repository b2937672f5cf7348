"""What a served model's answers were checked against, measured when it is loaded.

On ONNX Runtime a model is served as its file: the verified export itself, nothing to measure.
On another runtime, or at a precision the runtime chose (``--backend openvino --precision
bf16``), its agreement with the float32 file on ONNX Runtime is measured on zoo's sample
photos at batch 1 and 8, against the thresholds of its precision, as ``zoo bench
--precisions`` does; a configuration whose agreement does not hold is not served. The report
is shown at ``/v1/models/NAME`` and in the ``/v2`` model metadata's ``parameters``.
"""

from __future__ import annotations

from zoo.base import jsonio
from zoo.base.errors import ZooError
from zoo.base.progress import status
from zoo.runtime.api import load
from zoo.runtime.bench import runtime_version
from zoo.runtime.model import Model
from zoo.runtime.samples import sample_images


def verification(model: Model, target: str, threads: int = 0) -> dict:
    """How ``model`` (loaded from ``target``) was checked here: a JSON-ready dict."""
    facts = {
        "backend": model.backend,
        "runtime": runtime_version(model),
        "precision": model.precision,
    }
    if model.backend == "onnx":
        return {**facts, "checked_against": "itself: the file is the verified export"}
    from zoo.exporters.runtimes import export_reference, measured_agreement

    status(f"measuring {target} on {model.backend} at {model.precision} against ONNX Runtime")
    reference = load(target, "onnx", provider="cpu", threads=threads)
    photos = sample_images()
    report = measured_agreement(export_reference(reference, photos), model)
    if not report.passed:
        raise ZooError(
            f"{target} on {model.backend} at {model.precision} does not agree with its "
            f"{reference.precision} export on ONNX Runtime: {'; '.join(report.failures())}"
        )
    return {
        **facts,
        "checked_against": f"its {reference.precision} export on {runtime_version(reference)}",
        "photos": len(photos),
        "batch_sizes": sorted({p.batch for p in report.photos}),
        "passed": report.passed,
        "thresholds": report.to_dict()["thresholds"],
        "top1_agreement": report.top1_agreement,
        "top5_overlap": report.top5_overlap,
        "max_probability_diff": report.max_probability_diff,
    }


def as_parameters(verification: dict) -> dict:
    """The verification as Open Inference Protocol parameters, whose values are strings,
    numbers or booleans: the others (thresholds, batch sizes) as JSON text."""
    return {
        key: value if isinstance(value, str | int | float | bool) else jsonio.dumps(value)
        for key, value in verification.items()
    }
