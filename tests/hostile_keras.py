"""Hostile Keras files made on the spot, without TensorFlow (a zip, JSON and h5py), small
on disk: for tests/test_keras_hostile.py and the hostile corpus."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

KERNEL = 30720
"""A Dense kernel of KERNEL x KERNEL float32: 3.5 GiB declared."""


def keras_object(class_name: str, config, module="keras.layers", registered=None) -> dict:
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered,
    }


def model_config(*extra: dict, units: int = 3, features: int = 4) -> dict:
    layers = [
        keras_object("InputLayer", {"batch_shape": [None, features], "name": "in"}),
        *extra,
        keras_object("Dense", {"name": "dense", "units": units, "activation": "softmax"}),
    ]
    return keras_object("Sequential", {"name": "s", "layers": layers}, module="keras")


def weights_h5(shape=(4, 3), stored: bool = True) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        group = file.create_group("layers/dense/vars")
        if stored:
            group.create_dataset("0", data=np.random.default_rng(0).random(shape, np.float32))
        else:  # declared, chunked, nothing written: a few bytes on disk
            group.create_dataset("0", shape=shape, dtype="float32", chunks=(1024, 1024))
    return buffer.getvalue()


def write_keras(path: Path, config, weights: bytes | None = None, extra=()) -> Path:
    text = config if isinstance(config, str | bytes) else json.dumps(config)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.4.1"}))
        archive.writestr("config.json", text)
        archive.writestr("model.weights.h5", weights_h5() if weights is None else weights)
        for name, data in extra:
            archive.writestr(name, data)
    return path


def declared_3_5_gib(tmp: Path) -> Path:
    weights = weights_h5((KERNEL, KERNEL), stored=False)
    return write_keras(tmp / "huge.keras", model_config(units=KERNEL, features=KERNEL), weights)


ODD_CONFIGS = {
    "lambda_config_null": model_config(keras_object("Lambda", None)),
    "lambda_config_string": model_config(keras_object("Lambda", "x")),
    "integer_module": model_config(keras_object("Dense", {"name": "d", "units": 4}, module=7)),
    "list_registered_name": model_config(
        keras_object("Gain", {"name": "g"}, "acme", registered=["a"])
    ),
    "nested_100000_deep": "[" * 100_000 + "]" * 100_000,
    "nested_300_deep": '{"a":' * 300 + "1" + "}" * 300,
    "a_list": "[1, 2]",
}
