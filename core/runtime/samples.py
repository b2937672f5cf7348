"""The sample photos shipped with zoo (see data/samples/ATTRIBUTION.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from zoo.base.errors import ZooError
from zoo.model.spec import ModelSpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def sample_images() -> list[Path]:
    folder = Path(str(resources.files("zoo").joinpath("data/samples")))
    return image_files(folder)


def verification_images(spec: ModelSpec) -> list[Path]:
    """The photos an export of ``spec`` is verified on: its own, or zoo's ImageNet samples."""
    return [Path(p) for p in spec.verification_images] or sample_images()


def calibration_images(spec: ModelSpec) -> list[Path]:
    """The photos an int8 export of ``spec`` is calibrated on by default."""
    return [Path(p) for p in spec.calibration_images] or verification_images(spec)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, by name; a ``ZooError`` if there are none."""
    if not folder.is_dir():
        raise ZooError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ZooError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files
