"""Pooled backbone features, computed once per image and kept on disk.

A feature file is keyed by everything that changes it: the base model, its weights (sha256),
the input size, the resize interpolation, the image's bytes (sha256) and, for an augmented
copy, its number. A re-run on the same data (other epochs, another learning rate, one more
class) computes only the features it has not seen; an interrupted run keeps what it finished.

The features are computed on ONNX Runtime, through the backbone exported by zoo's converter
(cached beside the features), when its output agrees with Keras's on the first images within
the export tolerance; on a 2-core CPU it is several times faster than Keras's forward pass.
Otherwise Keras computes them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.base import jsonio
from zoo.base.errors import ImageError
from zoo.base.files import atomic_path
from zoo.base.paths import zoo_home
from zoo.base.printing import printable
from zoo.base.progress import note, progress_bar, status
from zoo.base.version import __version__
from zoo.model.input_config import InputConfig
from zoo.runtime.images import decode_image, open_image, pixels_for
from zoo.runtime.pipeline import default_workers
from zoo.runtime.preprocessing import preprocess
from zoo.sources.weights import file_digest
from zoo.training.base import Base

AGREEMENT_IMAGES = 8
"""Images the ONNX backbone is compared with Keras on, the first time it is made."""
CROP_AREA = (0.7, 1.0)
"""An augmented copy keeps this fraction of the image's area (a random crop), flipped or not."""


@dataclass(frozen=True)
class FeatureTask:
    """One feature vector to compute: an image, or its ``copy``-th augmented version."""

    path: Path
    sha256: str
    copy: int = 0

    @property
    def key(self) -> str:
        return self.sha256 if self.copy == 0 else f"{self.sha256}-aug{self.copy}"


@dataclass
class Extraction:
    """What ``extract`` did: the features by job key, and where its time went."""

    features: dict[str, np.ndarray]
    computed: int
    cached: int
    runtime: str
    """onnxruntime or keras (or "cache" when nothing had to be computed)."""
    agreement: float | None
    """max |ONNX - Keras| / max |Keras| on the agreement images, when measured in this run."""
    seconds: float
    unreadable: dict[str, str] = field(default_factory=dict)
    """image path -> why it could not be decoded."""


class FeatureCache:
    """The features of one base model (with given weights, size and interpolation).

    A subclass caches another output of the base the same way: ``kind`` names its folder in
    zoo's home, ``extra_identity`` what else its files depend on, and with ``keep_in_memory``
    False, ``extract`` only makes sure every file is there (``path`` finds it)."""

    kind = "features"
    keep_in_memory = True
    dtype: type = np.float32
    """How the vectors are stored."""

    def __init__(self, base: Base, provider: str = "auto", threads: int = 0, **extra_identity):
        self.base, self.spec = base, base.spec
        self.provider, self.threads = provider, threads
        weights = base.weights_path
        identity = {
            "model": base.spec.name,
            "weights_sha256": file_digest(weights) if weights else "random-init",
            "input_size": list(base.input.size),
            "interpolation": base.input.interpolation,
            "preprocess": base.input.preprocess.to_dict(),
            **extra_identity,
        }
        key = hashlib.sha256(jsonio.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = zoo_home() / self.kind / f"{base.spec.name}-{key}"
        self.identity = identity

    def path(self, job: FeatureTask) -> Path:
        return self.folder / job.key[:2] / f"{job.key}.npy"

    def extract(
        self, jobs: Sequence[FeatureTask], batch_size: int = 32, seed: int = 0, engine=None
    ) -> Extraction:
        """Features for every job, from the cache or computed now (and then cached): here, or
        by ``engine`` (its ``compute(cache, jobs, batch_size, seed, result)`` calls ``add``
        for each vector, as ``zoo.training.distributed.RayFeatures`` does on an actor pool)."""
        started = time.monotonic()
        features: dict[str, np.ndarray] = {}
        missing = []
        for job in jobs:
            path = self.path(job)
            if job.key in features:
                continue
            if path.is_file():
                features[job.key] = np.load(path) if self.keep_in_memory else path
            else:
                missing.append(job)
        result = Extraction(features, 0, len(features), "cache", None, 0.0)
        if missing:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "identity.json").write_text(jsonio.dumps(self.identity, indent=2))
            run, result.runtime, result.agreement = self._runner(missing, seed)
            if engine is None:
                self._compute(missing, run, batch_size, seed, result)
            else:
                engine.compute(self, missing, batch_size, seed, result)
            _say_unsaid_skips(result)
        result.seconds = time.monotonic() - started
        return result

    def _compute(self, jobs, run: Callable, batch_size: int, seed: int, result: Extraction) -> None:
        bar = progress_bar(f"{self.kind} ({result.runtime})", len(jobs), "image")
        with ThreadPoolExecutor(default_workers(), thread_name_prefix="zoo-features") as pool:
            chunks = [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]

            def submit(chunk) -> list[Future]:
                return [pool.submit(self._decode, job, seed) for job in chunk]

            pending, stored = submit(chunks[0]), []
            for index, chunk in enumerate(chunks):
                decoded = [future.result() for future in pending]
                if index + 1 < len(chunks):
                    pending = submit(chunks[index + 1])  # decoded while the model runs
                good = [
                    (job, pixels)
                    for job, pixels in zip(chunk, decoded, strict=True)
                    if not isinstance(pixels, ImageError)
                ]
                for job, error in zip(chunk, decoded, strict=True):
                    if isinstance(error, ImageError):
                        skip(result, job, error.reason)
                if good:
                    vectors = run(np.stack([pixels for _, pixels in good]))
                    for (job, _), vector in zip(good, vectors, strict=True):
                        stored.append(pool.submit(self._store, job, vector))
                        self._count(result, job, vector)
                bar.update(len(chunk))
            for future in stored:
                future.result()  # a write that failed fails the run
        bar.close()

    def _decode(self, job: FeatureTask, seed: int) -> np.ndarray | ImageError:
        """The job's image as the model's input, or its error. Run in the pool, so that the
        thread feeding the model only stacks and runs."""
        return model_input(job, self.base.input, seed)

    def add(self, result: Extraction, job: FeatureTask, vector: np.ndarray) -> None:
        """A vector computed: stored in the cache, and counted in ``result``."""
        self._store(job, vector)
        self._count(result, job, vector)

    def _store(self, job: FeatureTask, vector: np.ndarray) -> None:
        path = self.path(job)
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as temporary, temporary.open("wb") as out:
            np.save(out, np.asarray(vector, self.dtype))

    def _count(self, result: Extraction, job: FeatureTask, vector: np.ndarray) -> None:
        result.features[job.key] = vector if self.keep_in_memory else self.path(job)
        result.computed += 1

    @property
    def backbone_path(self) -> Path:
        """The base's features model, exported to ONNX (when its features agree with Keras's)."""
        return self.folder / f"backbone-zoo{__version__}.onnx"

    def _runner(self, jobs: Sequence[FeatureTask], seed: int):
        """The fastest runtime whose features agree with Keras's: (run, name, agreement)."""
        onnx_path = self.backbone_path
        if onnx_path.is_file():
            return self._onnx_run(onnx_path), "onnxruntime", None
        from zoo.sources.bundle_network import build_base, features_model

        status(f"building {self.spec.name}'s backbone in Keras")
        base, layer = build_base(self.spec, self.base.weights_path)
        keras_features = features_model(base, layer)

        def keras_run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(keras_features.predict(batch, verbose=0))

        disagreement = self.folder / "backbone.disagrees.json"
        if disagreement.is_file():
            return keras_run, "keras", json.loads(disagreement.read_text())["agreement"]
        status(f"converting {self.spec.name}'s backbone to ONNX")
        try:
            run, agreement = self._export(keras_features, onnx_path, jobs, seed, keras_run)
        except _Disagrees as error:
            disagreement.write_text(jsonio.dumps({"agreement": error.agreement}))
            status(f"ONNX features differ from Keras's ({error.agreement:.2g}); using Keras")
            return keras_run, "keras", error.agreement
        except Exception as error:  # any converter failure: Keras computes them instead
            status(f"the backbone did not convert ({type(error).__name__}); using Keras")
            return keras_run, "keras", None
        return run, "onnxruntime", agreement

    def _export(self, keras_features, onnx_path: Path, jobs, seed: int, keras_run):
        from zoo.exporters.convert import keras_to_onnx
        from zoo.exporters.onnx import DEFAULT_OPSET
        from zoo.exporters.verify import DEFAULT_TOLERANCE

        proto = keras_to_onnx(
            keras_features, DEFAULT_OPSET, output_name="features", check=False
        ).proto
        sample = [
            p
            for p in (self._decode(job, seed) for job in jobs[:AGREEMENT_IMAGES])
            if not isinstance(p, ImageError)
        ]
        with atomic_path(onnx_path) as temporary:
            temporary.write_bytes(proto.SerializeToString())
            run = self._onnx_run(temporary)
            agreement = 0.0
            if sample:
                batch = np.stack(sample)
                reference = keras_run(batch)
                scale = float(np.max(np.abs(reference))) or 1.0
                agreement = float(np.max(np.abs(run(batch) - reference))) / scale
            if agreement > DEFAULT_TOLERANCE:
                raise _Disagrees(agreement)
        return run, agreement  # the session has the graph in memory: the rename is harmless

    def _onnx_run(self, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        from zoo.runtime.onnx_file import open_session

        session = open_session(path, self.provider, self.threads)
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]


class _Disagrees(Exception):
    def __init__(self, agreement: float):
        self.agreement = agreement


SKIPS_SAID = 20
"""Unreadable images named on stderr, one line each, per extraction; the rest are counted in
one line (the report names them all)."""


def skip(result: Extraction, job: FeatureTask, reason: str) -> None:
    """An image that cannot be read: left out, and said once (not once per augmented copy),
    while fewer than ``SKIPS_SAID`` have been."""
    path = str(job.path)
    if path in result.unreadable:
        return
    result.unreadable[path] = reason
    if len(result.unreadable) <= SKIPS_SAID:
        note(f"zoo: skipping {printable(path)}: {reason}")


def _say_unsaid_skips(result: Extraction) -> None:
    unsaid = len(result.unreadable) - SKIPS_SAID
    if unsaid > 0:
        note(f"zoo: skipping {unsaid:,} more unreadable images (the report names them all)")


def model_pixels(
    job: FeatureTask, config: InputConfig, seed: int, data: bytes | None = None
) -> np.ndarray | ImageError:
    """The job's image at the base's input size, as uint8 (augmented for a copy), or why it
    cannot be read. ``data``: the file's bytes, when something else has read them."""
    try:
        image = open_image(job.path) if data is None else decode_image(data, job.path)
    except ImageError as error:
        return error
    if job.copy:
        image = augment(image, job, seed)
    return pixels_for(image, config)


def model_input(
    job: FeatureTask, config: InputConfig, seed: int, data: bytes | None = None
) -> np.ndarray | ImageError:
    """``model_pixels``, preprocessed: what the base is fed."""
    pixels = model_pixels(job, config, seed, data)
    return pixels if isinstance(pixels, ImageError) else preprocess(pixels, config.preprocess)


def augment(image: Image.Image, job: FeatureTask, seed: int) -> Image.Image:
    """The ``job.copy``-th light augmentation of an image: a random crop, flipped every other
    copy. Deterministic: the same image, copy and seed give the same pixels."""
    rng = np.random.default_rng([seed, job.copy, int(job.sha256[:12], 16)])
    width, height = image.size
    scale = np.sqrt(rng.uniform(*CROP_AREA))
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    image = image.crop((left, top, left + crop_w, top + crop_h))
    if job.copy % 2 == 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
