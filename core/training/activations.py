"""The base's activations at the fine-tuning boundary, computed once per image and kept on disk.

Fine-tuning unfreezes the base's top layers. Everything below them stays frozen (batch
normalisation included, in inference mode), so what those layers make of an image never
changes while training: their output at the boundary (the input of the lowest unfrozen layer)
is computed once per image, and per augmented copy, and every epoch runs only the layers
above it, forward and backward.

The files are keyed like the pooled features (the base, its weights, input size, resize
filter, preprocessing, the image's sha256 and copy), plus the boundary layer. They are stored
as float16 when the model's probabilities from float16 activations agree with those from
float32 on the first images, by the thresholds an fp16 export is held to (the same top-1 on
every image, no probability moved by more than 0.01); else as float32. The decision is kept
in the folder beside the files.

The cache is bounded: all of zoo's cached activations together stay within a limit
(``TrainSettings.activation_cache_gb``). Files no run needs now are removed oldest first to
make room; a run that needs more than the limit by itself does not use the cache at all.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from zoo.base import jsonio
from zoo.base.errors import ImageError
from zoo.base.files import atomic_path
from zoo.base.paths import zoo_home
from zoo.training.base import Base
from zoo.training.features import AGREEMENT_IMAGES, FeatureCache, FeatureTask

PRECISION_FILE = "precision.json"


def activations_root() -> Path:
    return zoo_home() / ActivationCache.kind


class ActivationCache(FeatureCache):
    """The activations of one base (weights, size, filter) at one boundary layer's input.

    ``bottom`` computes them from a preprocessed batch; ``probabilities`` runs the model above
    the boundary on them (for the float16 check)."""

    kind = "activations"
    keep_in_memory = False

    def __init__(
        self,
        base: Base,
        layer: str,
        shape: Sequence[int],
        bottom: Callable[[np.ndarray], np.ndarray],
        probabilities: Callable[[np.ndarray], np.ndarray],
    ):
        super().__init__(base, boundary=layer)
        self.layer, self.shape = layer, tuple(shape)
        self.bottom, self.probabilities = bottom, probabilities

    def choose_precision(self, jobs: Sequence[FeatureTask], seed: int) -> dict:
        """float16 or float32 for this boundary, as measured on the first readable images of
        ``jobs`` (the first time; read back after): the decision and its figures."""
        record_path = self.folder / PRECISION_FILE
        if record_path.is_file():
            record = json.loads(record_path.read_text())
        else:
            record = self._measure(jobs, seed)
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(record_path) as temporary:
                temporary.write_text(jsonio.dumps(record, indent=2))
        self.dtype = np.float16 if record["dtype"] == "float16" else np.float32
        return record

    def _measure(self, jobs: Sequence[FeatureTask], seed: int) -> dict:
        from zoo.exporters.agreement import THRESHOLDS

        thresholds = THRESHOLDS["fp16"]
        sample = []
        for job in jobs:
            pixels = self._decode(job, seed)
            if not isinstance(pixels, ImageError):
                sample.append(pixels)
            if len(sample) == AGREEMENT_IMAGES:
                break
        exact = self.bottom(np.stack(sample))
        reference = self.probabilities(exact)
        rounded = self.probabilities(exact.astype(np.float16).astype(np.float32))
        top1 = float(np.mean(reference.argmax(axis=1) == rounded.argmax(axis=1)))
        moved = float(np.max(np.abs(reference - rounded)))
        agrees = top1 >= thresholds.top1_agreement and moved <= thresholds.max_probability_diff
        return {
            "dtype": "float16" if agrees else "float32",
            "images": len(sample),
            "top1_agreement": top1,
            "max_probability_diff": moved,
        }

    def bytes_each(self) -> int:
        """What one image's activations take on disk: the .npy file's header and data."""
        header = io.BytesIO()
        description = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_1_0(header, description)
        return header.tell() + math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def _runner(self, jobs, seed: int):
        return self.bottom, "keras", None


def make_room(needed: int, limit: int, keep: set[Path]) -> bool:
    """Whether ``needed`` more bytes fit within ``limit`` beside the activations already
    cached, once the oldest files not in ``keep`` (this run's) are removed to make room."""
    files = []
    for path in activations_root().rglob("*.npy"):
        try:
            info = path.stat()
        except FileNotFoundError:  # removed meanwhile by another run
            continue
        files.append((info.st_mtime, info.st_size, path))
    total = needed + sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit:
            break
        if path not in keep:
            path.unlink(missing_ok=True)
            total -= size
    return total <= limit
