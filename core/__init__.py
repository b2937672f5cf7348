"""zoo: Keras ImageNet classifiers, made deployable.

import zoo
model = zoo.load("resnet50")                 # Keras backend, ImageNet weights
for p in model.predict("cat.jpg", top=5):
    print(p.class_id, p.label, p.score)

``load``, ``Model``, ``Prediction``, ``train`` and ``evaluate`` need NumPy and are imported on
first use, so that ``import zoo`` (and every plugin importing ``hookimpl`` from it) stays light.
"""

import importlib

from .errors import ZooError
from .hookspecs import hookimpl  # plugins import it from here
from .keras_model import keras_application
from .registry import get_registry
from .specs import (
    Backend,
    ExporterSpec,
    ExportOptions,
    LoadOptions,
    ModelSpec,
    PreprocessSpec,
    Runner,
    WeightsSpec,
)
from .version import API_VERSION, __version__

_LAZY = {
    "load": "zoo.api",
    "Model": "zoo.model",
    "Prediction": "zoo.labels",
    "train": "zoo.training",
    "evaluate": "zoo.training",
    "TrainSettings": "zoo.training",
    "TrainReport": "zoo.training",
    "EvaluationReport": "zoo.training",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    "Backend",
    "EvaluationReport",
    "ExportOptions",
    "ExporterSpec",
    "LoadOptions",
    "Model",
    "ModelSpec",
    "Prediction",
    "PreprocessSpec",
    "Runner",
    "TrainReport",
    "TrainSettings",
    "WeightsSpec",
    "ZooError",
    "__version__",
    "evaluate",
    "get_registry",
    "hookimpl",
    "keras_application",
    "load",
    "train",
]
