"""Image files for tests, made on the spot: photo-like pixels, odd modes and broken files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pixels(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient plus noise: every resize filter gives a different answer on it."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 / max(width, 2), y * 255 / max(height, 2), (x + y) * 255 / (width + height)],
        axis=-1,
    )
    noise = np.random.default_rng(seed).normal(0, 25, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def rgb(width=160, height=120) -> Image.Image:
    return Image.fromarray(pixels(width, height))


def with_alpha(image: Image.Image) -> Image.Image:
    """``image`` plus an alpha channel that varies (drop it, as Keras does; don't composite)."""
    alpha = Image.fromarray(pixels(*image.size, seed=1)[..., 0])
    image = image.copy()
    image.putalpha(alpha)
    return image


def sixteen_bit_png(path: Path, samples: np.ndarray) -> Path:
    assert samples.dtype == np.uint16
    image = Image.fromarray(samples)
    image.save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    return path


def truncated_jpeg(path: Path) -> Path:
    full = path.with_name("full.jpg")
    rgb(400, 300).save(full, quality=95)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def png_bomb(path: Path, width=30000, height=30000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height``; nothing that size is allocated."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"  # after the 8-byte signature and the 4-byte chunk length
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def oriented_jpeg(path: Path) -> Path:
    """Stored 40 wide x 20 tall, left half red, right half blue; EXIF says rotate 90° clockwise."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, exif=exif, quality=95)
    return path


def text_file(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path
