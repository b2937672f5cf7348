"""Small seeded Keras model files of the kinds users have, made on the spot (random init):
for the tests of Keras files as model references, and for benchmarks/export.py.

``GOOD`` are image classifiers zoo takes, each with the options its command line needs;
``BAD`` are files zoo refuses, each in one line.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

CUSTOM_MODULE = "acme_layers"
CUSTOM_SOURCE = '''"""A user's own Keras layer, registered as acme>Gain."""

import keras


@keras.saving.register_keras_serializable(package="acme")
class Gain(keras.layers.Layer):
    """x * gain, one learned gain per channel."""

    def build(self, input_shape):
        self.gain = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.RandomUniform(0.5, 1.5, seed=1),
        )

    def call(self, x):
        return x * self.gain
'''


@dataclass(frozen=True)
class KerasFile:
    """A file made by ``make``: its name in the folder, and the options zoo needs for it."""

    name: str
    options: tuple[str, ...]
    classes: int
    description: str


GOOD = {
    "augmented": KerasFile(
        "augmented_cnn.keras", (), 4, "CNN with RandomFlip + Rescaling + BatchNorm, .keras"
    ),
    "legacy": KerasFile(
        "legacy_sequential.h5", ("--preprocess", "tf"), 5, "Sequential saved as legacy .h5"
    ),
    "transfer": KerasFile(
        "transfer.keras", (), 3, "nested MobileNetV2 (alpha 0.35, 96x96) base + new head, .keras"
    ),
    "logits": KerasFile(
        "logits_head.keras",
        ("--preprocess", "torch"),
        6,
        "logits head: SeparableConv2D, LeakyReLU, swish, no softmax",
    ),
    "custom": KerasFile(
        "custom_layer.keras",
        ("--custom-objects", CUSTOM_MODULE),
        3,
        "a custom layer (acme>Gain) registered in the user's own module",
    ),
}


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def augmented(path: Path) -> None:
    keras = _keras()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.RandomZoom(0.1)(x)
    x = keras.layers.RandomContrast(0.2)(x)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GaussianNoise(0.1)(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="augmented_cnn")
    _settle_batch_norm(model, keras)
    model.save(path)


def _settle_batch_norm(model, keras) -> None:
    """Moving statistics other than 0 and 1, as a trained model has."""
    import numpy as np

    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, variance.shape),
                ]
            )


def legacy(path: Path) -> None:
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((28, 28, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(5, activation="softmax"),
        ],
        name="legacy_sequential",
    )
    model.save(path)  # .h5: Keras's legacy format (it warns)


def transfer(path: Path) -> None:
    keras = _keras()
    base = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None
    )
    _settle_batch_norm(base, keras)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model(inputs, outputs, name="transfer").save(path)


def logits(path: Path) -> None:
    keras = _keras()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="swish")(inputs)
    x = keras.layers.SeparableConv2D(16, 3)(x)
    x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.Conv2D(16, 3, activation="leaky_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(6)(x)  # logits: no softmax
    keras.Model(inputs, outputs, name="logits_head").save(path)


def custom_module(folder: Path):
    """The user's module, written in ``folder`` and imported (which registers acme>Gain)."""
    (folder / f"{CUSTOM_MODULE}.py").write_text(CUSTOM_SOURCE)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(CUSTOM_MODULE)


def custom(path: Path) -> None:
    keras = _keras()
    module = custom_module(path.parent)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = module.Gain(name="gain")(x)  # named: other tests may have made Gain layers before
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model(inputs, outputs, name="custom_layer").save(path)


def _small_cnn(keras, inputs, x, outputs_layer):
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs_layer(x))


def lambda_layer(path: Path) -> None:
    keras = _keras()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0, name="scale_pixels")(inputs)
    _small_cnn(keras, inputs, x, keras.layers.Dense(3, activation="softmax")).save(path)


def two_inputs(path: Path) -> None:
    keras = _keras()
    image, extra = keras.Input((32, 32, 3)), keras.Input((4,))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    x = keras.layers.Concatenate()([x, extra])
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model([image, extra], outputs).save(path)


def not_an_image(path: Path) -> None:
    keras = _keras()
    inputs = keras.Input((10,))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)).save(path)


def regression(path: Path) -> None:
    keras = _keras()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    _small_cnn(keras, inputs, x, keras.layers.Dense(1)).save(path)


BUILDERS = {
    "augmented": augmented,
    "legacy": legacy,
    "transfer": transfer,
    "logits": logits,
    "custom": custom,
}

BAD = {
    "lambda_layer.keras": lambda_layer,
    "two_inputs.keras": two_inputs,
    "not_an_image.keras": not_an_image,
    "regression.keras": regression,
}


def make(kind: str, folder: Path) -> Path:
    """The ``GOOD`` file ``kind``, written in ``folder``; its path."""
    path = folder / GOOD[kind].name
    BUILDERS[kind](path)
    return path


def make_bad(name: str, folder: Path) -> Path:
    path = folder / name
    BAD[name](path)
    return path
