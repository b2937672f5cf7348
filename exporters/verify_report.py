"""``MODEL.verify.json``: the evidence that an exported file gives Keras's answers, written
beside it by ``zoo export`` and rewritten by ``zoo verify``.

One record for both writers. It holds the exact float32 check (``VerificationReport``) when one
ran, at the top level, and for an int8 or fp16 file the variant's agreement
(``AgreementReport``) under ``agreement``. Files written before the record had a ``format``
still read: ``zoo export``'s (the float32 figures at the top level) and ``zoo verify``'s for
int8/fp16 (``model``, ``onnx``, ``agreement``, ``verified_on`` only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zoo.base import jsonio
from zoo.base.files import atomic_path
from zoo.exporters.agreement import AgreementReport
from zoo.exporters.convert import Conversion, converter_facts
from zoo.exporters.verify import VerificationReport
from zoo.model.card import VerifiedOn

FORMAT_VERSION = 2
"""1: the unversioned files of earlier zoo versions."""
_ENVELOPE = ("format", "model", "onnx", "verified_on", "converter", "agreement")


@dataclass(frozen=True)
class VerifyReport:
    model: str
    onnx: str
    verified_on: dict
    """Where it was verified (``VerifiedOn``): int8 kernels differ between CPU classes."""
    float32: dict | None = None
    """The exact float32 check's figures (``VerificationReport.to_dict``); None when only an
    int8 or fp16 file's agreement was measured."""
    agreement: dict | None = None
    converter: dict | None = None
    """Which converter made the graph, when the run that wrote this made it."""
    format: int = FORMAT_VERSION

    @classmethod
    def of(
        cls,
        model: str,
        onnx: str | Path,
        float32: VerificationReport | None = None,
        agreement: AgreementReport | None = None,
        conversion: Conversion | None = None,
    ) -> VerifyReport:
        figures = None
        if float32 is not None:
            figures = {k: v for k, v in float32.to_dict().items() if k not in _ENVELOPE}
        return cls(
            model=model,
            onnx=str(onnx),
            verified_on=VerifiedOn.here().to_dict(),
            float32=figures,
            agreement=agreement.to_dict() if agreement else None,
            converter=converter_facts(conversion),
        )

    @property
    def passed(self) -> bool:
        checks = [part["passed"] for part in (self.float32, self.agreement) if part]
        return bool(checks) and all(checks)

    def to_dict(self) -> dict:
        document = {"format": self.format, "model": self.model, "onnx": self.onnx}
        document |= self.float32 or {}
        document["verified_on"] = self.verified_on
        if self.converter is not None:
            document["converter"] = self.converter
        if self.agreement is not None:
            document["agreement"] = self.agreement
        return document

    @classmethod
    def from_dict(cls, document: dict) -> VerifyReport:
        figures = {k: v for k, v in document.items() if k not in _ENVELOPE}
        return cls(
            model=document["model"],
            onnx=document["onnx"],
            verified_on=document.get("verified_on") or {},
            float32=figures or None,
            agreement=document.get("agreement"),
            converter=document.get("converter"),
            format=document.get("format", 1),
        )

    def write(self, path: Path) -> None:
        with atomic_path(path) as temporary:
            temporary.write_text(jsonio.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> VerifyReport:
        return cls.from_dict(json.loads(Path(path).read_text()))
