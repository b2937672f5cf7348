"""The Keras side of a trained model: a base's pooled features, and the head on top of them.

Any registered functional model can be a base: its features are the last feature map with a
spatial extent (before the ImageNet top: global pooling, flatten, dense), global-average
pooled, which is what ``include_top=False, pooling="avg"`` gives for every
``keras.applications`` model. The head is dropout and a dense softmax layer.

A trained model is one weights file: the base's own weights file (as Keras reads it into the
base) with the head's kernel and bias added in an HDF5 group of their own, ``zoo_head``,
which Keras's loaders do not look at. Writing it needs only h5py, not TensorFlow.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from zoo.base.errors import ZooError
from zoo.model.spec import ModelSpec
from zoo.sources.keras_model import build_keras_model, import_keras

HEAD_GROUP = "zoo_head"
FEATURES_LAYER = "zoo_features"
DROPOUT_LAYER = "zoo_dropout"
HEAD_LAYER = "zoo_head"


def feature_layer(model, model_name: str) -> str:
    """The name of ``model``'s (the model ``model_name``'s) last layer whose output is a
    feature map with a spatial extent (computed: the input image is not one)."""
    name = None
    for layer in getattr(model, "layers", ()):
        if type(layer).__name__ == "InputLayer":
            continue
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is not None and len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1):
            name = layer.name
    if name is None or not getattr(model, "inputs", None):
        raise ZooError(
            f"{model_name}: no feature map to train a head on (zoo needs a functional Keras model "
            "whose own layers include a convolutional feature map; it does not look inside "
            "a backbone nested as one layer, nor a SavedModel's function)"
        )
    return name


def features_model(base, layer: str):
    """``base`` up to ``layer``, global-average pooled: (N, h, w, 3) -> (N, channels)."""
    keras = import_keras()
    pooled = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(base.get_layer(layer).output)
    return keras.Model(_inputs(base), pooled, name=f"{base.name}_features")


def build_base(spec: ModelSpec, weights: Path | None):
    """The base's Keras model and the layer its features come from."""
    base = build_keras_model(spec, weights)
    return base, feature_layer(base, spec.name)


def classifier(base, layer: str, classes: int, dropout: float, name: str):
    """The trainable model: ``base``'s pooled features, dropout, a dense softmax layer."""
    keras = import_keras()
    features = features_model(base, layer).output
    x = keras.layers.Dropout(dropout, name=DROPOUT_LAYER)(features)
    probabilities = keras.layers.Dense(classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(_inputs(base), probabilities, name=name)


def _inputs(base):
    """``base``'s input as Keras expects it when the model is called: a single input as a
    tensor, not a list of one (which makes every call warn that the structures differ)."""
    return base.inputs[0] if len(base.inputs) == 1 else base.inputs


def build_trained(
    base_spec: ModelSpec, classes: int, dropout: float, name: str, weights: str | None
):
    """A trained model from its weights file (``None``: seeded random init, base and head)."""
    weights_path = Path(weights) if weights else None
    base, layer = build_base(base_spec, weights_path)
    model = classifier(base, layer, classes, dropout, name)
    if weights_path is not None:
        kernel, bias = read_head(weights_path)
        model.get_layer(HEAD_LAYER).set_weights([kernel, bias])
    return model


def write_weights(base_weights: Path | None, kernel, bias, destination: Path) -> None:
    """The base's weights file plus the head, as one file at ``destination``."""
    import h5py

    if base_weights is not None:
        shutil.copyfile(base_weights, destination)
    with h5py.File(destination, "a") as file:
        if HEAD_GROUP in file:
            del file[HEAD_GROUP]
        group = file.create_group(HEAD_GROUP)
        group.create_dataset("kernel", data=np.asarray(kernel, np.float32))
        group.create_dataset("bias", data=np.asarray(bias, np.float32))


def read_head(weights: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(weights, "r") as file:
        if HEAD_GROUP not in file:
            raise ZooError(f"{weights}: not a zoo-trained weights file (no {HEAD_GROUP} group)")
        return file[HEAD_GROUP]["kernel"][()], file[HEAD_GROUP]["bias"][()]
