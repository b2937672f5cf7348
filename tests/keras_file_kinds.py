"""Small seeded Keras files of the kinds users train from scratch (random init, made on the
spot): grayscale (h, w, 1) and channel-less (h, w) inputs, a one-sigmoid binary head, an x/255
CNN; and the kinds zoo refuses (several sigmoid units, two or four channels)."""

from __future__ import annotations

from pathlib import Path

SIZE = 16


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _cnn(keras, shape, head, rescale: bool = False):
    layers = [keras.Input(shape)]
    if rescale:
        layers.append(keras.layers.Rescaling(1 / 255))
    layers += [
        keras.layers.Conv2D(6, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        head,
    ]
    return keras.Sequential(layers)


def grayscale(path: Path) -> None:
    """(16, 16, 1), trained on x/255: ``--preprocess unit``."""
    keras = _keras()
    _cnn(keras, (SIZE, SIZE, 1), keras.layers.Dense(3, activation="softmax")).save(path)


def channel_less(path: Path) -> None:
    """(16, 16), no channel axis, Flatten first, a logits head (the Fashion-MNIST tutorial)."""
    keras = _keras()
    keras.Sequential(
        [
            keras.Input((SIZE, SIZE)),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(4),
        ]
    ).save(path)


def sigmoid(path: Path) -> None:
    """One sigmoid unit, its pixels scaled inside: cats vs dogs."""
    keras = _keras()
    head = keras.layers.Dense(1, activation="sigmoid")
    _cnn(keras, (SIZE, SIZE, 3), head, rescale=True).save(path)


def unit_rgb(path: Path) -> None:
    """An RGB CNN trained on x/255, softmax head."""
    keras = _keras()
    _cnn(keras, (SIZE, SIZE, 3), keras.layers.Dense(3, activation="softmax")).save(path)


def multi_label(path: Path) -> None:
    keras = _keras()
    _cnn(keras, (SIZE, SIZE, 3), keras.layers.Dense(3, activation="sigmoid")).save(path)


def channels(count: int):
    def make(path: Path) -> None:
        keras = _keras()
        head = keras.layers.Dense(3, activation="softmax")
        _cnn(keras, (SIZE, SIZE, count), head).save(path)

    return make


KINDS = {
    "grayscale.keras": grayscale,
    "channel_less.keras": channel_less,
    "sigmoid.keras": sigmoid,
    "unit_rgb.keras": unit_rgb,
    "multi_label.keras": multi_label,
    "two_channels.keras": channels(2),
    "four_channels.keras": channels(4),
}
