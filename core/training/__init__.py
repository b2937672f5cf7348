"""Training classifiers of your own classes on a registered model: ``zoo train``.

``train`` and ``evaluate`` are imported on first use: the bundle plugin reads
bundles' cards through ``zoo.sources.bundle`` when ``zoo list`` runs, which must not load
NumPy.
"""

import importlib

_LAZY = {
    "train": ".trainer",
    "evaluate": ".evaluation",
    "TrainSettings": ".settings",
    "TrainReport": ".reports",
    "EvaluationReport": ".reports",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")


__all__ = ["EvaluationReport", "TrainReport", "TrainSettings", "evaluate", "train"]
