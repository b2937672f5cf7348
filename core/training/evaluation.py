"""``zoo.evaluate``: the training report's metrics for any model on any labelled folder."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zoo.base.errors import ZooError
from zoo.base.printing import printable
from zoo.base.progress import note, progress_bar
from zoo.distributed import RayOptions, actors_backend, model_bytes
from zoo.model.input_config import InputOverrides, resolve
from zoo.runtime.api import load
from zoo.runtime.pipeline import decoded_batches
from zoo.training.dataset import scan
from zoo.training.distributed import EvaluationRun
from zoo.training.int8_check import Comparison, fp32_comparison
from zoo.training.metrics import classification_report
from zoo.training.reports import EvaluationReport

OTHER = "(other)"
"""The column for a prediction outside the folder's classes (an ImageNet model's 990 others)."""


def evaluate(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    backend: str = "keras",
    weights: str | os.PathLike = "imagenet",
    batch_size: int = 32,
    overrides: InputOverrides | None = None,
    provider: str = "auto",
    threads: int = 0,
    reference: str | os.PathLike | None = None,
    engine: RayOptions | None = None,
    precision: str | None = None,
) -> EvaluationReport:
    """Metrics of ``model`` (a registered name, a bundle, or an exported .onnx file) on
    ``data``: a folder with one sub-folder per class, named by the model's labels or class
    ids (with ``train/ val/ test/``: its test images, else its validation images).

    For an int8 or fp16 export, also its agreement with the float32 model (``reference``, or
    the model its card names) on the same images: ``fp32_agreement`` in the result.

    ``engine``: the images go through a pool of Ray actors (the model as ONNX: a .onnx file,
    or ``backend="onnx"``), and the report is the same. The float32 agreement is then not
    measured: the pixels stay with the actors. ``precision``: what the runtime computes in
    (``"bf16"`` with ``backend="openvino"``; see ``zoo.load``)."""
    dataset = scan(Path(data))
    split = "test" if dataset.split("test") else "val" if dataset.layout == "splits" else None
    items = dataset.split(split) if split else dataset.items
    if engine is not None:  # the actors run the model as ONNX: its labels and card are those
        backend = actors_backend(backend)
    loaded = load(
        model,
        backend=backend,
        weights=weights,
        provider=provider,
        threads=threads,
        precision=precision,
    )
    columns = _columns(dataset.classes, loaded.labels)
    if engine is None:
        comparison = fp32_comparison(loaded, reference, provider, threads)
    elif loaded.precision != "fp32":
        reason = "with --engine ray the images are decoded by the actors"
        note(f"zoo: agreement with float32 not measured: {reason}")
        comparison = Comparison(loaded, None, reason)
    else:
        comparison = None
    rows, truth, files, unreadable = [], [], [], {}
    labels = {str(item.path): item for item in items}
    bar = progress_bar(f"evaluating {loaded.name}", len(items), "image")
    config = resolve(loaded.input, overrides)
    if engine is None:
        scored = _scored_here(loaded, list(labels), config, batch_size)
    else:
        onnx = model_bytes(str(model), str(weights))
        scored = _scored_on_ray(onnx, list(labels), engine, provider, overrides, batch_size)
    for batch, probabilities, pixels in scored:
        good = [path for path, error in batch if error is None]
        for path, error in batch:
            if error is not None:
                unreadable[labels[path].relative] = error
                note(f"zoo: skipping {printable(path)}: {error}")
        if good:
            relative = [labels[path].relative for path in good]
            rows.append(_fold(probabilities, columns))
            if comparison:
                comparison.add(relative, pixels, probabilities, lambda p: _fold(p, columns))
            truth += [dataset.classes.index(labels[path].label) for path in good]
            files += relative
        bar.update(len(batch))
    bar.close()
    if not rows:
        raise ZooError(f"{data}: no readable images")
    names = list(dataset.classes) + ([OTHER] if len(columns) < len(loaded.labels) else [])
    truth = np.array(truth)
    return EvaluationReport(
        model=loaded.name,
        backend=loaded.backend,
        precision=loaded.precision,
        data=str(dataset.root),
        split=split,
        unreadable=unreadable,
        metrics=classification_report(truth, np.concatenate(rows), names, files),
        fp32_agreement=comparison.summary(truth) if comparison else None,
    )


Scored = tuple[list[tuple[str, str | None]], np.ndarray | None, np.ndarray | None]
"""A batch: (each image and why it could not be read, or None), the probabilities of those
read, and their pixels (None where they stay elsewhere)."""


def _scored_here(loaded, paths: list[str], config, batch_size: int) -> Iterator[Scored]:
    for batch in decoded_batches(paths, config, batch_size):
        good = [d for d in batch if d.error is None]
        pixels = np.stack([d.pixels for d in good]) if good else None
        probabilities = loaded.probabilities(pixels) if good else None
        yield [(d.path, d.error.reason if d.error else None) for d in batch], probabilities, pixels


def _scored_on_ray(
    model: bytes, paths: list[str], engine: RayOptions, provider, overrides, batch_size: int
) -> Iterator[Scored]:
    """The same batches, their probabilities from an actor pool, in the images' order."""
    run = EvaluationRun.started(engine, model, paths, provider)
    settings = dict(top=1, overrides=overrides, fast_decode=False)
    records = iter(run.records(batch_size, True, settings))
    while batch := list(itertools.islice(records, batch_size)):
        good = [r["probabilities"] for r in batch if not r["error"]]
        probabilities = np.stack(good) if good else None
        yield [(r["image"], r["error"] or None) for r in batch], probabilities, None


def _columns(classes: tuple[str, ...], labels) -> list[int]:
    """The model's output index of each folder class, matched by label or class id."""
    by_name = {}
    for index, (class_id, label) in enumerate(labels):
        by_name.setdefault(label, index)
        by_name.setdefault(class_id, index)
        by_name.setdefault(str(index), index)
    missing = [c for c in classes if c not in by_name]
    if missing:
        raise ZooError(
            f"the model has no class named {missing[0]!r}"
            + (f" (nor {len(missing) - 1} other folder(s))" if len(missing) > 1 else "")
            + "; name each folder by one of the model's labels or class ids"
        )
    return [by_name[c] for c in classes]


def _fold(probabilities: np.ndarray, columns: list[int]) -> np.ndarray:
    """Probabilities of the folder's classes, plus, when the model has others, their best as
    one more column: the argmax is the model's own top-1, mapped to the folder's classes."""
    kept = probabilities[:, columns]
    if len(columns) == probabilities.shape[1]:
        return kept
    rest = np.delete(probabilities, columns, axis=1).max(axis=1, keepdims=True)
    return np.concatenate([kept, rest], axis=1)
