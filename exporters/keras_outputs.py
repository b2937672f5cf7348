"""What both checks of an export compare with: Keras's outputs on real photos, and the export's
own outputs on the same pixels at each batch size.

``verify`` (a float32 export: exact) and ``agreement`` (int8, fp16: how often the answer stays
the same) both build on this module; neither imports the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.model.input_config import InputConfig
from zoo.model.labels import LabelList
from zoo.model.spec import ModelSpec, PreprocessSpec
from zoo.runtime.images import open_image, pixels_for
from zoo.runtime.model import Model
from zoo.runtime.preprocessing import preprocess
from zoo.runtime.scores import require_probabilities, softmax
from zoo.sources.keras_model import import_keras

TOP = 5
DEFAULT_BATCH_SIZES = (1, 8)
KERAS, ONNX_RUNTIME = "Keras", "ONNX Runtime"


@dataclass
class KerasReference:
    """What Keras makes of the photos: computed once, compared with every run of the export."""

    names: list[str]
    pixels: np.ndarray
    """(N, height, width, 3) uint8: what both sides are fed."""
    preprocessing: PreprocessSpec
    labels: LabelList
    probabilities: np.ndarray
    logits: np.ndarray | None


def load_photos(images: Sequence[Path], config: InputConfig) -> np.ndarray:
    """The photos as ``config``'s model takes them, one uint8 batch; a bad file fails here,
    before any heavy work."""
    decoded = [open_image(path) for path in images]
    return np.stack([pixels_for(image, config) for image in decoded])


def keras_reference(
    keras_model,
    preprocessing: PreprocessSpec,
    labels: LabelList,
    images: Sequence[Path],
    pixels: np.ndarray,
    has_logits: bool,
) -> KerasReference:
    """Keras's outputs on ``pixels``; ``has_logits``: the model outputs logits (see
    ``logits_model``), and the probabilities are their softmax, in float64. Outputs that claim
    to be probabilities and are not are refused here, before they are compared; rows of NaN
    or infinity are left to the comparison, which names the photo (``non_finite_side``)."""
    # One photo per call: a functional model holds every intermediate tensor of a call until
    # it returns, 0.7 GiB for NASNetMobile on 6 photos, 0.15 GiB for one.
    outputs = np.concatenate(
        [
            np.asarray(keras_model(preprocess(pixels[i : i + 1], preprocessing), training=False))
            for i in range(len(pixels))
        ]
    )
    probabilities, logits = outputs, None
    if has_logits:
        probabilities, logits = softmax(outputs), outputs
    else:
        require_probabilities(outputs[np.isfinite(outputs).all(axis=-1)], keras_model.name)
    names = [Path(path).name for path in images]
    return KerasReference(names, pixels, preprocessing, labels, probabilities, logits)


def exported_runs(
    reference: KerasReference, exported: Model, batch_sizes: Sequence[int]
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray | None]]:
    """The export run on the reference's photos, ``batch_size`` at a time for each size:
    per run, the photos' indices, the probabilities and the logits (None if it has none)."""
    for batch in batch_sizes:
        for index in batches(len(reference.names), batch):
            inputs = preprocess(reference.pixels[index], exported.preprocessing)
            yield index, *exported.runner.outputs(inputs)


def batches(count: int, batch: int) -> Iterator[list[int]]:
    """Indices into the images, ``batch`` at a time; images repeat to fill a batch larger than
    the set, so that the larger batch size really runs."""
    if batch >= count:
        yield [i % count for i in range(batch)]
        return
    for start in range(0, count, batch):
        yield list(range(start, min(start + batch, count)))


def non_finite_side(
    keras: Sequence[np.ndarray | None], exported: Sequence[np.ndarray | None]
) -> str | None:
    """Which side gave NaN or infinity among one photo's outputs (probabilities, logits: None
    where there are none): "Keras", "ONNX Runtime", both, or None when all are finite. Such
    outputs cannot be compared: their differences would be NaN, which no tolerance catches."""
    sides = [
        side
        for side, outputs in ((KERAS, keras), (ONNX_RUNTIME, exported))
        if not all(np.isfinite(values).all() for values in outputs if values is not None)
    ]
    return " and ".join(sides) or None


def top_indices(scores: np.ndarray) -> list[int]:
    """The indices of the ``TOP`` largest scores, largest first."""
    return [int(i) for i in np.argsort(scores)[-TOP:][::-1]]


def label_names(indices: list[int], labels: LabelList) -> str:
    """``[tabby, tiger_cat, ...]``: the labels of ``indices``, for a one-line message."""
    return "[" + ", ".join(labels[i][1] for i in indices) + "]"


@contextlib.contextmanager
def logits_model(model, spec: ModelSpec) -> Iterator[tuple[Any, bool]]:
    """The model to convert and compare, and whether it outputs logits.

    With random-init weights the softmax is uniform to float32 precision, so the logits are
    what both sides compare. A model declared ``output="logits"`` gives them as it is; a
    functional model ending in a ``Softmax`` layer is cut before it; one whose last layer has
    the softmax as its ``activation`` (``Dense``, ``Activation``) gets a linear one for the
    while (eager calls and new traces see the change). Any other model is compared on its
    probabilities.
    """
    keras = import_keras()
    last = model.layers[-1]
    if spec.output == "logits":
        yield model, True
    elif isinstance(last, keras.layers.Softmax) and getattr(model, "inputs", None):
        yield keras.Model(model.input, last.input, name=model.name), True
    elif getattr(last, "activation", None) is keras.activations.softmax:
        last.activation = keras.activations.linear
        try:
            yield model, True
        finally:
            last.activation = keras.activations.softmax
    else:
        yield model, False
