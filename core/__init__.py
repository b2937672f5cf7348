"""zoo: Keras ImageNet classifiers, made deployable.

import zoo
model = zoo.load("resnet50")                 # Keras backend, ImageNet weights
for p in model.predict("cat.jpg", top=5):
    print(p.class_id, p.label, p.score)
"""

__version__ = "0.1.0"
API_VERSION = 1
"""The plugin API's version: bumped when a hook or a spec changes incompatibly."""

from .api import Model, load  # noqa: E402
from .errors import ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402  (plugins import it from here)
from .labels import Prediction  # noqa: E402
from .registry import get_registry  # noqa: E402
from .specs import Backend, ExporterSpec, ModelSpec, PreprocessSpec, Runner, WeightsSpec  # noqa: E402
from .training import TrainResult, evaluate, train  # noqa: E402

__all__ = [
    "API_VERSION",
    "Backend",
    "ExporterSpec",
    "Model",
    "ModelSpec",
    "Prediction",
    "PreprocessSpec",
    "Runner",
    "TrainResult",
    "WeightsSpec",
    "ZooError",
    "__version__",
    "evaluate",
    "get_registry",
    "hookimpl",
    "load",
    "train",
]
