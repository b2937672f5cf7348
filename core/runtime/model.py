"""``Model``: a classifier loaded into a backend, images in, top-K predictions out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zoo.base.errors import PluginError, ZooError
from zoo.model.card import ModelCard
from zoo.model.input_config import InputConfig, InputOverrides, resolve
from zoo.model.labels import LabelList, Prediction, top_k
from zoo.model.spec import PreprocessSpec, Runner
from zoo.runtime.images import ImageSource, load_image
from zoo.runtime.preprocessing import preprocess
from zoo.runtime.scores import require_probabilities


class Model:
    """A classifier loaded into a backend: images in, top-K predictions out.

    Everything it needs besides the runner is data, its ``InputConfig``: input size,
    preprocessing, labels, resize filter. That is what lets a registered model and an exported
    .onnx file behave the same.
    """

    def __init__(
        self,
        name: str,
        input: InputConfig,
        runner: Runner,
        backend: str,
        weights: str,
        precision: str = "fp32",
        card: ModelCard | None = None,
    ):
        self.name = name
        self.input = input
        """What the runner is fed (for a graph that preprocesses itself: raw pixels)."""
        self.runner = runner
        self.backend = backend
        self.weights = weights
        """Where the weights came from: a file, or "none" for random init."""
        self.precision = precision
        """What the model computes in: fp32, or a lower-precision export's fp16 or int8."""
        self.card = card
        """An exported .onnx file's card (what it was made from); None for a registered model."""
        self.verification: dict | None = None
        """How this configuration was checked where it was loaded (``zoo serve``), if it was."""

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input.size

    @property
    def preprocessing(self) -> PreprocessSpec:
        return self.input.preprocess

    @property
    def labels(self) -> LabelList:
        return self.input.labels

    @property
    def interpolation(self) -> str:
        """The resize filter images are made with unless a call names another."""
        return self.input.interpolation

    def __repr__(self) -> str:
        return f"<zoo.Model {self.name} on {self.backend}, weights {self.weights}>"

    def predict(
        self, image: ImageSource, top: int = 5, interpolation: str | None = None
    ) -> list[Prediction]:
        """The top-``top`` classes of one image (a path, a Pillow image or a uint8 RGB array)."""
        return self.predict_batch([image], top, interpolation)[0]

    def predict_batch(
        self,
        images: Sequence[ImageSource],
        top: int = 5,
        interpolation: str | None = None,
    ) -> list[list[Prediction]]:
        """The top-``top`` classes of each image, in one backend run."""
        if not len(images):
            raise ZooError("predict_batch needs at least one image")
        config = resolve(self.input, InputOverrides(interpolation=interpolation))
        pixels = np.stack([load_image(i, config) for i in images])
        return self.top(self.probabilities(pixels), top)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, height, width, 3) RGB values in 0..255 -> (N, classes) probabilities."""
        probabilities = self.runner(preprocess(pixels, self.preprocessing))
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.labels):
            raise PluginError(
                f"model {self.name!r} gives outputs of shape {probabilities.shape} "
                f"but has {len(self.labels)} labels"
            )
        require_probabilities(probabilities, self.name)
        return probabilities

    def top(self, probabilities: np.ndarray, k: int = 5) -> list[list[Prediction]]:
        if k < 1:
            raise ZooError(f"top must be at least 1, not {k}")
        return [top_k(row, self.labels, min(k, len(self.labels))) for row in probabilities]
