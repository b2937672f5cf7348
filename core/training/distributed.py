"""``zoo train`` and ``zoo evaluate`` with ``--engine ray``: their images go through a pool of
Ray actors, as ``zoo predict --engine ray``'s do (``zoo.distributed``: the actors read the
files' bytes and decode them with zoo's own image reading, ONNX Runtime runs the model, and
every input's record is counted: none lost, none twice).

For training, the actors compute the base's pooled features with the backbone the feature
cache exported and checked against Keras here, from the same pixels (augmented copies
included) as ``--engine local``; the vectors come back to this process, which stores them in
the same cache. The head is trained here. For evaluation, they compute the model's
probabilities, and this process makes the same report from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from zoo.base.errors import ImageError, ZooError
from zoo.base.progress import progress_bar
from zoo.distributed import Actor, Classifier, RayOptions, RayRun, actor_source
from zoo.model.input_config import InputConfig
from zoo.training.features import Extraction, FeatureCache, FeatureTask, model_input, skip


class RayFeatures:
    """A ``FeatureCache.extract`` engine: the missing features computed by an actor pool."""

    def __init__(self, options: RayOptions, provider: str = "auto"):
        self.options, self.provider = options, provider

    def compute(
        self,
        cache: FeatureCache,
        jobs: Sequence[FeatureTask],
        batch_size: int,
        seed: int,
        result: Extraction,
    ) -> None:
        if result.runtime != "onnxruntime":
            raise ZooError(
                f"--engine ray computes features with ONNX Runtime, but {cache.spec.name}'s "
                "backbone did not export to ONNX with features that agree with Keras's; "
                "train with --engine local"
            )
        model = cache.backbone_path.read_bytes()
        jobs = list(jobs)
        run = FeatureRun.started(self.options, model, jobs, self.provider)
        bar = progress_bar("features (ray)", len(jobs), "image")
        settings = dict(config=cache.base.input, seed=seed)
        for record in run.records(batch_size, False, settings):
            job = jobs[int(record["key"])]
            if record["error"]:
                skip(result, job, record["error"])
            else:
                cache.add(result, job, record["vector"])
            bar.update(1)
        bar.close()


class FeatureRun(RayRun):
    """One feature vector per job (an image, or one of its augmented copies). A job is keyed
    by its place in the list, not by its content: two files with the same bytes (two empty
    ones, say) are two jobs, each with its record."""

    key = "key"

    def rows(self) -> list[dict]:
        return [
            {
                "key": str(index),
                "image": str(job.path),
                "source": actor_source(str(job.path)),
                "sha256": job.sha256,
                "copy": job.copy,
            }
            for index, job in enumerate(self.files)
        ]

    def worker(self) -> type:
        return FeatureWorker

    def unpack(self, batch: dict) -> Iterator[dict]:
        for key, error, vector in zip(batch["key"], batch["error"], batch["vector"], strict=True):
            yield {"key": str(key), "error": str(error), "vector": vector}


class FeatureWorker(Actor):
    """An actor computing pooled features with the backbone (an ONNX file without zoo's
    card): each row's image read, decoded, augmented for a copy, resized and preprocessed as
    ``FeatureCache`` does here."""

    def __init__(self, model, provider, threads, config: InputConfig, seed: int):
        super().__init__(model, provider, threads)
        self.config, self.seed = config, seed

    def load(self, path: Path, provider: str, threads: int):
        from zoo.runtime.onnx_file import open_session

        session = open_session(path, provider, threads)
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]

    def __call__(self, batch: dict) -> dict:
        rows = zip(batch["image"], batch["sha256"], batch["copy"], strict=True)
        jobs = [FeatureTask(Path(str(path)), str(sha256), int(copy)) for path, sha256, copy in rows]
        inputs = list(self.decoders.map(self.input, jobs, self.contents(batch)))
        good = [i for i, pixels in enumerate(inputs) if not isinstance(pixels, ImageError)]
        vectors = self.model(np.stack([inputs[i] for i in good])) if good else None
        width = vectors.shape[1] if vectors is not None else 0
        out = np.zeros((len(jobs), width), np.float32)
        if good:
            out[good] = vectors
        return {
            "key": list(batch["key"]),
            "error": [p.reason if isinstance(p, ImageError) else "" for p in inputs],
            "vector": out,
        }

    def input(self, job: FeatureTask, content: bytes | ImageError) -> np.ndarray | ImageError:
        if isinstance(content, ImageError):
            return ImageError(str(job.path), content.reason)
        return model_input(job, self.config, self.seed, content)


class EvaluationRun(RayRun):
    """Every image's probabilities, for ``zoo evaluate``."""

    def worker(self) -> type:
        return Scorer

    def unpack(self, batch: dict) -> Iterator[dict]:
        rows = zip(batch["image"], batch["error"], batch["probabilities"], strict=True)
        for image, error, probabilities in rows:
            yield {"image": str(image), "error": str(error), "probabilities": probabilities}


class Scorer(Classifier):
    """An actor like ``predict``'s, giving each image's probabilities instead of its top
    classes."""

    def __call__(self, batch: dict) -> dict:
        decoded = self.decoded(batch)
        good = [i for i, item in enumerate(decoded) if item.error is None]
        classes = len(self.model.labels)
        out = np.zeros((len(decoded), classes), np.float32)
        if good:
            out[good] = self.model.probabilities(np.stack([decoded[i].pixels for i in good]))
        return {
            "image": [item.path for item in decoded],
            "error": [item.error.reason if item.error else "" for item in decoded],
            "probabilities": out,
        }
