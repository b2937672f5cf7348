"""Preprocessing math in NumPy, so that no TensorFlow is needed to feed a model."""

from __future__ import annotations

import numpy as np

from .specs import PreprocessSpec


def preprocess(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Normalise an (..., 3) array of RGB values in 0..255 as ``spec`` says; returns float32.

    The operations and their order are Keras's ``imagenet_utils.preprocess_input`` (flip,
    divide, subtract, divide), so the result equals Keras's for its caffe/tf/torch modes.
    """
    x = np.asarray(pixels, dtype=np.float32)
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    x = x / np.float32(spec.divisor) if spec.divisor != 1 else x.copy()
    x -= np.asarray(spec.mean, dtype=np.float32)
    if any(s != 1 for s in spec.std):
        x /= np.asarray(spec.std, dtype=np.float32)
    return x
