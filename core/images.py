"""Reading images into the (height, width, 3) uint8 RGB arrays a model is fed.

By default the result equals ``keras.utils.img_to_array(keras.utils.load_img(path,
target_size=size))`` bit for bit: same decoder (Pillow), same ``convert("RGB")``, same
nearest-neighbour resize. One deliberate difference: zoo honours the EXIF orientation tag
(a phone photo taken upright is classified upright); Keras ignores it.

16-bit grayscale (PNG/TIFF modes ``I;16``/``I``), which ``convert("RGB")`` would clip to white,
is scaled to 8 bits instead.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
KERAS_INTERPOLATION = "nearest"
"""What ``keras.utils.load_img`` uses unless told otherwise."""

_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}

ImageSource = str | os.PathLike | Image.Image | np.ndarray


def open_image(path: str | os.PathLike, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image file fully into RGB, upright; any failure is an ``ImageError`` naming it.

    ``draft``: the (height, width) the image is headed for. A JPEG is then decoded at the
    smallest scale (1/8, 1/4, 1/2) that keeps it at least that large, Pillow's draft mode:
    several times faster on large photos, but the pixels differ a little from a full decode,
    so from Keras's. Off by default for that reason.
    """
    return decode_image(read_bytes(path), path, draft)


def decode_image(data: bytes, name: object, draft: tuple[int, int] | None = None) -> Image.Image:
    """``open_image`` for an image already in memory (an upload, say); errors name ``name``."""
    if not data:
        raise ImageError(name, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if draft:
                side = max(draft)  # the EXIF orientation may still swap height and width
                image.draft("RGB", (side, side))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(name, error) from None
    except UnidentifiedImageError:
        raise ImageError(name, "not an image, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(name, f"corrupt or truncated image ({error})") from None
    try:
        return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(name, f"cannot convert to RGB ({error})") from None


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; any failure is an ``ImageError`` naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as error:
        raise ImageError(path, f"cannot read ({error.strerror or error})") from None


def _too_large(path: str | os.PathLike, error: Exception) -> ImageError:
    pixels = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
    return ImageError(
        path,
        f"image too large ({size}; the limit is {Image.MAX_IMAGE_PIXELS:,}, "
        "PIL.Image.MAX_IMAGE_PIXELS), refusing a possible decompression bomb",
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB, as Keras converts it (alpha is dropped, not composited)."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(samples / 257.0), 0, 255).astype(np.uint8), "L")
    with warnings.catch_warnings():
        # Pillow suggests RGBA for palette images with transparency; RGB is what we want.
        warnings.simplefilter("ignore", UserWarning)
        return image.convert("RGB")


def resize(image: Image.Image, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize to (height, width) as ``keras.utils.load_img`` does; returns uint8 (h, w, 3)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}"
        )
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), INTERPOLATIONS[interpolation])
    return np.asarray(image, dtype=np.uint8)


def load_image(
    source: ImageSource, size: tuple[int, int], interpolation: str = KERAS_INTERPOLATION
) -> np.ndarray:
    """A file path, Pillow image or (h, w, 3) uint8 array, as a model-sized uint8 RGB array."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError(
                "an image array must be uint8 (height, width, 3), "
                f"not {source.dtype} {source.shape}"
            )
        source = Image.fromarray(source, "RGB")
    elif isinstance(source, Image.Image):
        source = to_rgb(ImageOps.exif_transpose(source))
    else:
        source = open_image(source)
    return resize(source, size, interpolation)
