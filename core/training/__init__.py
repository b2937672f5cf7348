"""Training classifiers of your own classes on a registered model: ``zoo train``."""

from .trainer import TrainResult, train

__all__ = ["TrainResult", "train"]
