"""Keras files in the forms older Keras versions wrote, which Keras 3 refuses as saved: each is
made here from a small seeded Keras 3 model, saved, then its config edited into the old form
(the HDF5 ``model_config`` attribute, or a ``.keras`` archive's ``config.json``), so that its
weights are the model's own and its outputs can be compared with the model's.

``FORMS`` name each form, the file it is written to and the rewrites zoo must name loading it;
``REFUSED`` are forms no rewrite can make loadable.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 16


@dataclass(frozen=True)
class Form:
    file: str
    rewrites: tuple[str, ...]
    make: Callable[[Path], object]
    """Writes the file; returns the Keras 3 model it was made from."""


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def edit_h5_config(path: Path, edit: Callable[[dict], None], keras_version: str = "") -> None:
    import h5py

    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        edit(config)
        file.attrs["model_config"] = json.dumps(config)
        if keras_version:
            file.attrs["keras_version"] = keras_version


def edit_zip_config(path: Path, edit: Callable[[dict], None]) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def find(config, class_name: str) -> list[dict]:
    """Every serialised object of ``class_name`` in ``config``."""
    found = []
    if isinstance(config, dict):
        if config.get("class_name") == class_name:
            found.append(config)
        for value in config.values():
            found.extend(find(value, class_name))
    elif isinstance(config, list):
        for value in config:
            found.extend(find(value, class_name))
    return found


def keras20_sequential(path: Path):
    """Keras 2.0's Sequential: the config a bare list of layers, no InputLayer, the input's
    shape on the first layer as ``batch_input_shape`` (ShallowNet, the 2017 MNIST models)."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.Activation("relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
            keras.layers.Activation("softmax"),
        ]
    )
    model.save(path)

    def edit(config):
        members = config["config"]["layers"]
        first = members[1]["config"]
        first["batch_input_shape"] = [None, SIZE, SIZE, 3]
        config["config"] = members[1:]

    edit_h5_config(path, edit, keras_version="2.0.8")
    return model


def teachable_machine(path: Path):
    """A Teachable Machine export: a Sequential of a Sequential (a functional base ending in
    DepthwiseConv2D, its one input and output listed as lists of one, then pooling) and a
    Sequential head; every DepthwiseConv2D carries ``groups: 1``."""
    keras = _keras()
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(image)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    base = keras.Model(image, x, name="model1")
    body = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), base, keras.layers.GlobalAveragePooling2D()]
    )
    head = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax", use_bias=False),
        ]
    )
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), body, head])
    model.save(path)

    def edit(config):
        for layer in find(config, "DepthwiseConv2D"):
            layer["config"]["groups"] = 1
        for functional in find(config, "Functional"):
            for key in ("input_layers", "output_layers"):
                entry = functional["config"][key]
                if not isinstance(entry[0], list):
                    functional["config"][key] = [entry]

    edit_h5_config(path, edit, keras_version="2.4.0")
    return model


def keras33_augmentation(path: Path):
    """Keras 3.3: preprocessing and augmentation in nested Sequentials, ``RandomRotation``
    with the ``value_range`` later versions dropped, every input built with a batch of 4."""
    keras = _keras()
    batch = (4, SIZE, SIZE, 3)
    model = keras.Sequential(
        [
            keras.Input(batch_shape=batch),
            keras.Sequential(
                [
                    keras.Input(batch_shape=batch),
                    keras.layers.Resizing(SIZE, SIZE),
                    keras.layers.Rescaling(1 / 255),
                ]
            ),
            keras.Sequential(
                [
                    keras.Input(batch_shape=batch),
                    keras.layers.RandomFlip("horizontal"),
                    keras.layers.RandomRotation(0.2),
                ]
            ),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(path)

    def edit(config):
        for layer in find(config, "RandomRotation"):
            layer["config"]["value_range"] = [0, 255]

    edit_zip_config(path, edit)
    return model


def tf_keras_policy(path: Path):
    """tf.keras's mixed-precision ``Policy`` object as layers' dtypes."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(path)

    def edit(config):
        for layer in find(config, "Conv2D") + find(config, "Dense"):
            layer["config"]["dtype"] = {"class_name": "Policy", "config": {"name": "float32"}}

    edit_h5_config(path, edit, keras_version="2.9.0")
    return model


def keras2_keys_in_zip(path: Path):
    """Keras 2 keys in a ``.keras`` archive: ``batch_input_shape`` on the InputLayer and a
    BatchNormalization axis as a list."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(path)

    def edit(config):
        for layer in find(config, "InputLayer"):
            layer["config"]["batch_input_shape"] = layer["config"].pop("batch_shape")
        for layer in find(config, "BatchNormalization"):
            layer["config"]["axis"] = [3]

    edit_zip_config(path, edit)
    return model


def _plain(path: Path):
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(path)
    return model


def hdf5_named_keras(path: Path):
    """Keras 2.10 wrote HDF5 for a ``.keras`` path: an HDF5 file named ``.keras``."""
    h5 = path.with_suffix(".h5")
    model = _plain(h5)
    h5.rename(path)
    return model


FORMS = {
    "keras20": Form("keras20.h5", ("sequential-list", "sequential-input"), keras20_sequential),
    "teachable": Form(
        "keras_model.h5", ("functional-single-io", "depthwise-groups"), teachable_machine
    ),
    "augmentation": Form(
        "augmentation.keras", ("augmentation-keys", "fixed-batch"), keras33_augmentation
    ),
    "policy": Form("policy.h5", ("dtype-policy",), tf_keras_policy),
    "zip_keys": Form(
        "zip_keys.keras", ("batch-input-shape", "batch-norm-axis"), keras2_keys_in_zip
    ),
    "hdf5_keras": Form("hdf5_named.keras", (), hdf5_named_keras),
}


def depthwise_groups_2(path: Path) -> None:
    """``groups: 2`` on a DepthwiseConv2D: no rewrite keeps what it would compute."""
    teachable_machine(path)

    def edit(config):
        find(config, "DepthwiseConv2D")[0]["config"]["groups"] = 2

    edit_h5_config(path, edit)


def unknown_key(path: Path) -> None:
    """A key no Keras version took, on a Conv2D: no rewrite applies."""
    _plain(path)
    edit_h5_config(path, lambda config: find(config, "Conv2D")[0]["config"].update(flavour=1))


REFUSED = {
    "groups2.h5": (
        depthwise_groups_2,
        "(DepthwiseConv2D): 'groups' is 2; zoo rewrites only groups 1",
    ),
    "unknown_key.h5": (
        unknown_key,
        "(Conv2D): Unrecognized keyword arguments passed to Conv2D: {'flavour': 1}), and none of "
        "zoo's rewrites of older Keras forms applies",
    ),
}


def inputs(batch: int = 4) -> np.ndarray:
    """Seeded RGB values, 0..255, as float32."""
    rng = np.random.default_rng(1)
    return rng.uniform(0, 255, (batch, SIZE, SIZE, 3)).astype(np.float32)
