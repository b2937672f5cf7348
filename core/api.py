"""The Python API: ``zoo.load(name)`` gives a ``Model`` that classifies images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import PluginError, ZooError
from .images import KERAS_INTERPOLATION, ImageSource, load_image
from .labels import LabelList, Prediction, resolve_labels, top_k
from .preprocessing import preprocess
from .progress import status
from .registry import get_registry
from .specs import ModelSpec, PreprocessSpec, Runner
from .weights import resolve_weights


class Model:
    """A registered model loaded into a backend: images in, top-K predictions out."""

    def __init__(
        self,
        spec: ModelSpec,
        backend: str,
        runner: Runner,
        preprocessing: PreprocessSpec,
        labels: LabelList,
        weights: Path | None,
    ):
        self.spec = spec
        self.backend = backend
        self.runner = runner
        self.preprocessing = preprocessing
        self.labels = labels
        self.weights = weights

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    def __repr__(self) -> str:
        weights = self.weights or "random init"
        return f"<zoo.Model {self.name} on {self.backend}, weights {weights}>"

    def predict(
        self, image: ImageSource, top: int = 5, interpolation: str = KERAS_INTERPOLATION
    ) -> list[Prediction]:
        """The top-``top`` classes of one image (a path, a Pillow image or a uint8 RGB array)."""
        return self.predict_batch([image], top, interpolation)[0]

    def predict_batch(
        self,
        images: Sequence[ImageSource],
        top: int = 5,
        interpolation: str = KERAS_INTERPOLATION,
    ) -> list[list[Prediction]]:
        """The top-``top`` classes of each image, in one backend run."""
        pixels = np.stack([load_image(image, self.input_size, interpolation) for image in images])
        return self.top(self.probabilities(pixels), top)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, height, width, 3) RGB values in 0..255 -> (N, classes) probabilities."""
        probabilities = self.runner(preprocess(pixels, self.preprocessing))
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.labels):
            raise PluginError(
                f"model {self.name!r} gives outputs of shape {probabilities.shape} "
                f"but has {len(self.labels)} labels"
            )
        return probabilities

    def top(self, probabilities: np.ndarray, k: int = 5) -> list[list[Prediction]]:
        if k < 1:
            raise ZooError(f"top must be at least 1, not {k}")
        return [top_k(row, self.labels, min(k, len(self.labels))) for row in probabilities]


def load(name: str, backend: str = "keras", weights: str | os.PathLike = "imagenet") -> Model:
    """Load a registered model (by name or alias) into a backend.

    ``weights``: ``"imagenet"`` (Keras's cache, downloaded when missing), ``"none"`` (seeded
    random init) or the path of a weights file.
    """
    registry = get_registry()
    spec = registry.model(name)
    preprocessing = registry.preprocessor(spec)
    runtime = registry.backend(backend)
    labels = resolve_labels(spec.labels)
    weights_path = resolve_weights(spec, weights)
    status(f"loading {spec.name} on {backend} ({weights_path or 'random init'})")
    return Model(
        spec, backend, runtime.load(spec, weights_path), preprocessing, labels, weights_path
    )
