"""zoo: Keras ImageNet classifiers, made deployable.

import zoo
model = zoo.load("resnet50")                 # Keras backend, ImageNet weights
for p in model.predict("cat.jpg", top=5):
    print(p.class_id, p.label, p.score)

``load``, ``Model``, ``Prediction``, ``train`` and ``evaluate`` need NumPy and are imported on
first use, so that ``import zoo`` (and every plugin importing ``hookimpl`` from it) stays light.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from zoo.base.errors import ZooError
from zoo.base.version import API_VERSION, __version__
from zoo.model.spec import (
    Backend,
    ExporterSpec,
    ExportOptions,
    LoadOptions,
    ModelSpec,
    PreprocessSpec,
    Runner,
    WeightsSpec,
)
from zoo.plugin.hookspecs import hookimpl  # plugins import it from here
from zoo.plugin.registry import get_registry
from zoo.sources.keras_model import keras_application

_LAZY = {
    "load": "zoo.runtime.api",
    "Model": "zoo.runtime.model",
    "Prediction": "zoo.model.labels",
    "train": "zoo.training",
    "evaluate": "zoo.training",
    "TrainSettings": "zoo.training",
    "TrainReport": "zoo.training",
    "EvaluationReport": "zoo.training",
}


_MOVED = {
    "zoo.cli_options": "zoo.cli.options",
    "zoo.commands": "zoo.cli.commands",
    "zoo.errors": "zoo.base.errors",
    "zoo.exit_codes": "zoo.base.exit_codes",
    "zoo.hardware": "zoo.base.hardware",
    "zoo.input_config": "zoo.model.input_config",
    "zoo.jsonio": "zoo.base.jsonio",
    "zoo.keras_model": "zoo.sources.keras_model",
    "zoo.pipeline": "zoo.runtime.pipeline",
    "zoo.preprocessing": "zoo.runtime.preprocessing",
    "zoo.specs": "zoo.model.spec",
    "zoo.testing": "zoo.runtime.conformance",
}
"""Module paths that zoo 0.1's documentation gave, and where they live now (kept for one
release: importing one gives a ``DeprecationWarning`` and the module itself)."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved path as the module itself (importlib stamps the alias's ``__spec__`` on
    it, which ``exec_module`` puts back)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in _MOVED else None

    def __init__(self):
        self.specs = {}

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is now {_MOVED[spec.name]}", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(_MOVED[spec.name])
        self.specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.specs[module.__spec__.name]


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


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
