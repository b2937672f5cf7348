"""The real Keras files in ``../shared/data/real-keras-files`` (never copied here; see its
``SOURCES.md``), each with the zoo options its repository's code implies, and that code's
preprocessing of one photo, written here with Pillow and NumPy (OpenCV's ``imread`` is BGR),
which the repository's classes are computed from.

Options zoo has no equivalent for are approximated, and say so: Teachable Machine's
``ImageOps.fit`` crops to the square before its Lanczos resize (zoo squashes); OpenCV's
``INTER_AREA`` is Pillow's box filter; ``convertScaleAbs(alpha=1.3)`` saturates at 255, which
``scale=1.3/255`` does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-keras-files"


@dataclass(frozen=True)
class RealFile:
    path: str
    """Relative to ``ROOT``."""
    options: tuple[str, ...]
    """What ``zoo export`` and ``zoo predict`` are given."""
    interpolation: str
    """``zoo predict --interpolation``: the resize filter of the repository's code."""
    repository: Callable[[Path, tuple[int, ...]], np.ndarray]
    """The repository's preprocessing of one photo, to the model's input shape (no batch)."""


def _rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def _scaled(image: Image.Image, size, resample, divisor=255.0, bgr=False) -> np.ndarray:
    x = np.asarray(image.resize(size[::-1], resample), np.float32)
    return (x[..., ::-1] if bgr else x) / divisor


def vww(path, shape):  # load_img(color_mode='grayscale').resize((96, 96)) / 255.
    gray = Image.open(path).convert("L")
    return _scaled(gray, shape[:2], Image.BICUBIC).reshape(shape)


def teachable_machine(path, shape):  # ImageOps.fit(image, size, LANCZOS); x / 127.5 - 1
    fitted = ImageOps.fit(_rgb(path), shape[1::-1], Image.LANCZOS)
    return np.asarray(fitted, np.float32) / 127.5 - 1


def shallownet(path, shape):  # cv2.imread (BGR), cv2.resize(INTER_AREA), / 255.0
    return _scaled(_rgb(path), shape[:2], Image.BOX, bgr=True)


def mnist(path, shape):  # imread(mode='L'); np.invert; imresize (bilinear); / 255
    gray = ImageOps.invert(Image.open(path).convert("L"))
    return _scaled(gray, shape[:2], Image.BILINEAR).reshape(shape)


def eye_state(path, shape):  # cv2.imread (BGR); cv2.resize (bilinear); / 255.0
    return _scaled(_rgb(path), shape[:2], Image.BILINEAR, bgr=True)


def pneumonia(path, shape):  # BGR2GRAY; convertScaleAbs(alpha=1.3); resize; / 255
    gray = np.asarray(Image.open(path).convert("L"), np.float32)
    contrasted = Image.fromarray(np.clip(np.round(gray * 1.3), 0, 255).astype(np.uint8))
    return _scaled(contrasted, shape[:2], Image.BILINEAR).reshape(shape)


def unit(path, shape):  # load_img(target_size=...) (nearest) / 255.
    return _scaled(_rgb(path), shape[:2], Image.NEAREST)


def unit_gray(path, shape):  # a 28x28 grayscale array / 255.0
    gray = Image.open(path).convert("L")
    return _scaled(gray, shape[:2], Image.NEAREST).reshape(shape)


def brain_tumor(path, shape):  # np.array(Image.open(...).resize((224, 224))): raw, bicubic
    return np.asarray(_rgb(path).resize((224, 224), Image.BICUBIC), np.float32)


FILES = {
    "vww": RealFile("vww_mobilenet025_gray96/vww_96.h5", ("--preprocess", "unit"), "bicubic", vww),
    "teachable_machine": RealFile(
        "tm_cheetah_jaguar/keras_model.h5", ("--preprocess", "tf"), "lanczos", teachable_machine
    ),
    "shallownet": RealFile(
        "shallownet_animals_k208/shallownet_weights.hdf5",
        ("--preprocess", "scale=1/255,bgr"),
        "box",
        shallownet,
    ),
    "mnist_dense": RealFile(
        "mnist_dense_k204/dense.h5", ("--preprocess", "scale=-1/255,mean=-1"), "bilinear", mnist
    ),
    "mnist_simpler": RealFile(
        "mnist_dense_k204/simpler.h5", ("--preprocess", "scale=-1/255,mean=-1"), "bilinear", mnist
    ),
    "eye_state": RealFile(
        "eye_state_h5_named_keras/model.keras",
        ("--preprocess", "scale=1/255,bgr"),
        "bilinear",
        eye_state,
    ),
    "pneumonia": RealFile(
        "pneumonia_gray128/pneumonia.h5", ("--preprocess", "scale=1.3/255"), "bilinear", pneumonia
    ),
    "catdog": RealFile(
        "catdog_k3_sigmoid/cat_dog_classifier.keras", ("--preprocess", "unit"), "nearest", unit
    ),
    "fashion": RealFile(
        "fashion_mlp_logits_k3/my_model.keras", ("--preprocess", "unit"), "nearest", unit_gray
    ),
    "brain_tumor": RealFile("brain_tumor_k3_nested_prep/1.keras", (), "bicubic", brain_tumor),
    "covid": RealFile(
        "covid_ct_k3_mit/classifier.keras", ("--preprocess", "unit"), "nearest", unit
    ),
}


def samples(file: RealFile) -> list[Path]:
    """The file's repository's sample photos (empty where it has none)."""
    folder = (ROOT / file.path).parent / "samples"
    return sorted(folder.iterdir()) if folder.is_dir() else []
