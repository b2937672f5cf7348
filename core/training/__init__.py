"""Training classifiers of your own classes on a registered model: ``zoo train``."""

from .evaluate import evaluate
from .trainer import TrainResult, train

__all__ = ["TrainResult", "evaluate", "train"]
