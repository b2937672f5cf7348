"""The reports of ``zoo train`` and ``zoo evaluate`` as typed records: what ``--json`` prints,
what a bundle keeps as ``report.json``, what ``--plot`` draws and the terminal report reads.

The metrics of a split stay the plain dictionary ``metrics.classification_report`` makes
(top-1, per class, confusion matrix, misclassified files): the one shape both reports share.
``format`` is the record's schema version: the unversioned reports of earlier zoo versions are
format 1, and still read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 2
REPORT_FILE = "report.json"
"""A bundle's copy of its training report."""


@dataclass(frozen=True)
class TrainReport:
    name: str
    path: Path
    base: str
    mode: str
    classes: list[str]
    counts: dict[str, dict[str, int]]
    """Images per class and split (train, val, test)."""
    warnings: list[str]
    unreadable: dict[str, str]
    """Relative path -> why it could not be read."""
    stray_files: int
    settings: dict
    """The ``TrainSettings`` it ran with."""
    history: list[dict]
    """One record per epoch: epoch, phase, loss, accuracy, val_loss, val_accuracy."""
    best_epoch: int
    metrics: dict[str, dict]
    """Split ("val", "test") -> its classification metrics."""
    features: dict
    """How the base's features were obtained: runtime, computed, cached, seconds."""
    train_seconds: float
    refit: dict | None = None
    """When the head was trained again on every labelled image: epochs and images."""
    activations: dict | None = None
    """finetune: whether its epochs ran on the frozen layers' cached output (the boundary
    layer, float16 or float32 and the check that chose it, computed, cached, bytes, seconds),
    or on the images, and why."""
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "path": str(self.path)}

    @classmethod
    def from_dict(cls, document: dict) -> TrainReport:
        return cls(**{"format": 1, **_known(cls, document), "path": Path(document["path"])})

    @classmethod
    def read(cls, bundle: Path) -> TrainReport:
        """A bundle's ``report.json``; one written before reports named their bundle takes
        its name and path from the folder."""
        document = json.loads((Path(bundle) / REPORT_FILE).read_text())
        return cls.from_dict({"name": Path(bundle).name, "path": str(bundle), **document})


@dataclass(frozen=True)
class EvaluationReport:
    model: str
    backend: str
    precision: str
    data: str
    split: str | None
    """Which of DATA's images were counted: "test", "val", or None for all."""
    unreadable: dict[str, str]
    metrics: dict
    """The classification metrics, printed at the top level of ``to_dict``."""
    fp32_agreement: dict | None = None
    """For an int8 or fp16 model: its agreement with the float32 reference."""
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        document = {
            "format": self.format,
            "model": self.model,
            "backend": self.backend,
            "precision": self.precision,
            "data": self.data,
            "split": self.split,
            "unreadable": self.unreadable,
            **self.metrics,
        }
        if self.fp32_agreement is not None:
            document["fp32_agreement"] = self.fp32_agreement
        return document

    @classmethod
    def from_dict(cls, document: dict) -> EvaluationReport:
        envelope = {f.name for f in dataclasses.fields(cls)} - {"metrics"}
        return cls(
            **{"format": 1, **{k: v for k, v in document.items() if k in envelope}},
            metrics={k: v for k, v in document.items() if k not in envelope},
        )


def _known(cls, document: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in document.items() if k in names}
