"""Preprocessing math in NumPy, so that no TensorFlow is needed to feed a model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo.model.spec import PreprocessSpec

LUMA_WEIGHTS = (19595, 38470, 7471)
"""Pillow's ``convert("L")`` in fixed point: ``L = (R*19595 + G*38470 + B*7471 + 2**15) >> 16``
(ITU-R 601-2 luma, 0.299 R + 0.587 G + 0.114 B, rounded), which Keras's
``load_img(color_mode="grayscale")`` applies."""


def luma(pixels: np.ndarray) -> np.ndarray:
    """(..., 3) RGB values in 0..255 -> (..., 1) grayscale uint8, as Pillow converts to ``L``;
    an (..., 1) array is grayscale already and is returned as it is."""
    x = np.asarray(pixels)
    if x.shape[-1] == 1:
        return x
    weights = np.array(LUMA_WEIGHTS, np.uint32)
    total = x.astype(np.uint32) @ weights + (1 << 15)
    return (total >> 16).astype(np.uint8)[..., None]


def preprocess(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Normalise an (..., 3) array of RGB values in 0..255 as ``spec`` says; returns float32,
    (..., 1) for a grayscale model.

    The operations and their order are Keras's ``imagenet_utils.preprocess_input`` (flip,
    divide, subtract, divide), so the result equals Keras's for its caffe/tf/torch modes.
    """
    x = np.asarray(pixels)
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    elif spec.channel_order == "L":
        x = luma(x)
    x = x.astype(np.float32)  # a new contiguous array, which the steps below change in place
    if spec.divisor != 1:
        x /= np.float32(spec.divisor)
    if any(spec.mean):
        _per_channel(np.subtract, x, spec.mean)
    if any(s != 1 for s in spec.std):
        _per_channel(np.divide, x, spec.std)
    return x


def _per_channel(operation: Callable, x: np.ndarray, values: tuple[float, float, float]) -> None:
    """``x[..., c] = operation(x[..., c], values[c])`` in place. NumPy broadcasts over a last
    axis of length 3 slowly: one scalar pass when the values are equal (5x faster), else one
    pass per channel."""
    if len(set(values)) == 1:
        operation(x, np.float32(values[0]), out=x)
        return
    for channel, value in enumerate(values):
        operation(x[..., channel], np.float32(value), out=x[..., channel])
