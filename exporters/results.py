"""What an ONNX export produced: the file, its card, and how it was checked (the report
written beside the file is ``verify_report.VerifyReport``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.exporters.agreement import AgreementReport
from zoo.exporters.convert import EMITTER, Conversion, converter_facts
from zoo.exporters.verify import VerificationReport
from zoo.model.card import ModelCard


@dataclass
class OnnxExportResult:
    path: Path
    card: ModelCard
    report: VerificationReport | None
    report_path: Path | None
    triton: Path | None = None
    """The Triton model repository entry holding the file, when exported into one."""
    agreement: AgreementReport | None = None
    """How a lower-precision (int8, fp16) export agrees with Keras."""
    conversion: Conversion | None = None
    """Which converter made the graph and, on a fallback, why (its ``proto`` dropped)."""
    rewrites: tuple[str, ...] = ()
    """The rewrites the model's Keras file needed before Keras would load it."""

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
            "converter": converter_facts(self.conversion),
            "keras_rewrites": list(self.rewrites),
        }

    def summary(self) -> str:
        size = self.path.stat().st_size
        size = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
        facts = [size, f"opset {self.card.opset}"]
        if self.card.embeds_preprocessing:
            facts.append(f"uint8 input, {self.card.input.preprocess.name} preprocessing inside")
        if self.card.top_k:
            facts.append(f"top-{self.card.top_k.k} outputs")
        if self.card.precision != "fp32":
            facts.append(self.card.precision)
        if self.conversion:
            facts.append(describe_conversion(self.conversion))
        lines = [f"wrote {self.path} ({', '.join(facts)})"]
        if self.rewrites:
            lines.append(f"from the Keras file after zoo's rewrites {', '.join(self.rewrites)}")
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


def describe_conversion(conversion: Conversion) -> str:
    """``converted by zoo's emitter``, or the fallback and the layers that forced it."""
    if conversion.converter == EMITTER:
        return "converted by zoo's emitter"
    return f"converted by {conversion.converter}: the emitter does not convert " + ", ".join(
        conversion.unsupported_layers
    )
