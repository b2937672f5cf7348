"""The resize filters zoo offers, by name; Pillow's constants for them live in
``zoo.runtime.images``.

Kept apart so that declaring ``--interpolation`` imports neither Pillow nor NumPy.
"""

INTERPOLATION_NAMES = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
KERAS_INTERPOLATION = "nearest"
"""What ``keras.utils.load_img`` uses unless told otherwise."""
