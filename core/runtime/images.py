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
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from zoo.base.errors import ImageError, ZooError
from zoo.base.user_files import Bound, UserFileError, read_user_file
from zoo.model.input_config import InputConfig
from zoo.model.interpolation import INTERPOLATION_NAMES

INTERPOLATIONS = {name: Image.Resampling[name.upper()] for name in INTERPOLATION_NAMES}

_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_STRIP_PIXELS = 1 << 18
"""Pixels per strip when scaling 16-bit samples: 2 MiB of 64-bit integers at a time."""

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
    image = _decoded(open_lazily(data, name), name, draft)
    with _converting(name):
        return to_rgb(image)


def open_lazily(data: bytes, name: object) -> Image.Image:
    """The image's header, its pixels not decoded yet: its size and mode tell what decoding it
    will cost before anything is spent. A decompression bomb is refused here already; any
    failure is an ``ImageError`` naming ``name``."""
    if not data:
        raise ImageError(name, "empty file")
    with _reading(name):
        return Image.open(io.BytesIO(data))


def decode_to_size(image: Image.Image, name: object, config: InputConfig) -> np.ndarray:
    """An image from ``open_lazily``, decoded, upright, as ``config``'s model takes it: what
    ``pixels_for(decode_image(...), config)`` gives, bit for bit, in less memory.

    Pillow holds RGB in 4 bytes a pixel, so a large image is resized before it is converted to
    RGB wherever that gives the same pixels: for grayscale with any filter (each RGB band is the
    gray one), and for any mode of 8-bit bands with nearest-neighbour (every conversion to RGB
    is pixel by pixel; Pillow's nearest-neighbour picks other pixels in 16- and 32-bit modes).
    16-bit samples are scaled to 8-bit grayscale first, strip by strip. What is left at full
    size is the decoded image and at most an 8-bit copy of it."""
    nearest = _resampling(config.interpolation) == Image.Resampling.NEAREST
    image = _decoded(image, name)
    with _converting(name):
        image = _eight_bit(image)
        if image.mode == "L" or (nearest and _has_eight_bit_bands(image)):
            image = _resized(image, config.size, config.interpolation)
        return pixels_for(to_rgb(image), config)


def _has_eight_bit_bands(image: Image.Image) -> bool:
    return ImageMode.getmode(image.mode).typestr in ("|u1", "|b1")


def _decoded(image: Image.Image, name: object, draft: tuple[int, int] | None = None) -> Image.Image:
    """``image`` from ``open_lazily`` with its pixels decoded, and turned upright in place."""
    with _reading(name):
        if draft:
            side = max(draft)  # the EXIF orientation may still swap height and width
            image.draft("RGB", (side, side))
        image.load()
    with _converting(name):
        ImageOps.exif_transpose(image, in_place=True)  # not in place, it copies even upright ones
    return image


@contextmanager
def _reading(name: object):
    """Pillow's failures to open or decode an image as one ``ImageError`` naming ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(name, error) from None
    except UnidentifiedImageError:
        raise ImageError(name, "not an image, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(name, f"corrupt or truncated image ({error})") from None


@contextmanager
def _converting(name: object):
    try:
        yield
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(name, f"cannot convert to RGB ({error})") from None


IMAGE_FILE = Bound("an image file", 1024, "ZOO_MAX_IMAGE_MB")
"""An image file is read whole before it is decoded; past 1 GiB it is refused unread (the
pixel budget, ``PIL.Image.MAX_IMAGE_PIXELS``, then bounds what it decodes to)."""


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, read as every user's file is (``zoo.base.user_files``): anything but
    a regular file (a FIFO, a device, a socket: reading one can block forever or never end) is
    refused without reading it, and so is a file over ``IMAGE_FILE``. Any failure is an
    ``ImageError`` naming the file."""
    try:
        return read_user_file(path, IMAGE_FILE)
    except UserFileError as error:
        raise ImageError(path, error.reason) from None


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
    image = _eight_bit(image)
    with warnings.catch_warnings():
        # Pillow suggests RGBA for palette images with transparency; RGB is what we want.
        warnings.simplefilter("ignore", UserWarning)
        return image.convert("RGB")


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image scaled to 8-bit L (``round(sample / 257)``); any other, as it is.

    In strips of rows: NumPy on the whole image would hold it at 8 bytes a pixel."""
    if image.mode not in _SIXTEEN_BIT_MODES:
        return image
    width, height = image.size
    eight_bit = np.empty((height, width), np.uint8)
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        samples = np.asarray(image.crop((0, top, width, bottom)), dtype=np.int64)
        samples += 128  # x / 257 is never halfway between integers: this is round(x / 257)
        samples //= 257
        eight_bit[top:bottom] = np.clip(samples, 0, 255, out=samples)
    return Image.fromarray(eight_bit)


def pixels_for(image: Image.Image, config: InputConfig) -> np.ndarray:
    """A decoded, upright image as ``config``'s model takes it: resized to its (height, width)
    with its filter, uint8. The one place where the settings of ``InputConfig`` that change
    pixels are applied, whichever path the image came by (a file, bytes, a served request)."""
    return resize(image, config.size, config.interpolation)


def resize(image: Image.Image, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize to (height, width) as ``keras.utils.load_img`` does; returns uint8 (h, w, 3)."""
    return np.asarray(_resized(image, size, interpolation), dtype=np.uint8)


def _resized(image: Image.Image, size: tuple[int, int], interpolation: str) -> Image.Image:
    resampling = _resampling(interpolation)
    height, width = size
    if image.size == (width, height):
        return image
    return image.resize((width, height), resampling)


def _resampling(interpolation: str) -> Image.Resampling:
    if interpolation not in INTERPOLATIONS:
        raise ZooError(
            f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}"
        )
    return INTERPOLATIONS[interpolation]


def load_image(source: ImageSource, config: InputConfig) -> np.ndarray:
    """A file path, Pillow image or (h, w, 3) uint8 array, as ``config``'s model takes it.

    Anything else, or an image with no pixels, is an ``ImageError``, as a bad file is."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ImageError(
                "array",
                f"an image array must be uint8 (height, width, 3), not {source.dtype} "
                f"{source.shape}",
            )
        source = Image.fromarray(source, "RGB")
    elif isinstance(source, Image.Image):
        source = to_rgb(ImageOps.exif_transpose(source))
    elif isinstance(source, str | os.PathLike):
        source = open_image(source)
    else:
        raise ImageError(
            type(source).__name__,
            "not an image: give a file path, a Pillow image or a uint8 (height, width, 3) array",
        )
    if 0 in source.size:
        raise ImageError("image", f"has no pixels ({source.width}x{source.height})")
    return pixels_for(source, config)
