"""``zoo.train``: a labelled image folder in, a bundle (a model like any other) out."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ZooError
from ..files import atomic_directory, check_replaceable
from ..progress import status
from ..registry import get_registry
from ..weights import file_digest, resolve_weights
from . import bundle
from .base import Base, FinetuneSettings
from .dataset import Dataset, scan
from .features import FeatureCache, Job
from .head import HeadSettings, softmax, train_head
from .metrics import classification_report
from .network import write_weights

VERIFICATION_IMAGES_PER_CLASS = 3
"""Validation photos per class kept in the bundle: exports are verified on them."""
CALIBRATION_IMAGES = 200
"""Training photos kept in the bundle (as many per class as fit, at least one): int8 exports
are calibrated on them."""
TINY_CLASS = 10
"""A class with fewer training images than this gets a warning."""
IMBALANCE = 3.0
"""Largest over smallest class (training images) beyond which the report warns."""
BUNDLES_PLUGIN = "zoo.plugins.bundles"


@dataclass
class TrainResult:
    name: str
    path: Path
    report: dict

    @property
    def history(self) -> list[dict]:
        return self.report["history"]

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), **self.report}


def train(
    base: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    weights: str | os.PathLike = "imagenet",
    mode: str = "head",
    epochs: int = 10,
    learning_rate: float = 1e-3,
    batch_size: int = 32,
    val_split: float = 0.2,
    seed: int = 0,
    augment: int = 0,
    class_weight: str | None = None,
    patience: int | None = None,
    dropout: float = 0.2,
    unfreeze: int | str = 20,
    finetune_epochs: int | None = None,
    finetune_learning_rate: float = 1e-5,
    interpolation: str | None = None,
    provider: str = "auto",
    threads: int = 0,
    on_epoch=None,
) -> TrainResult:
    """Train a classifier of DATA's classes on BASE's frozen features; write it as a bundle.

    ``mode="finetune"`` then unfreezes the top ``unfreeze`` layers of the base ("all": every
    layer) and trains on for ``finetune_epochs`` (default ``epochs``) at
    ``finetune_learning_rate``, batch normalisation kept in inference mode. ``augment``: K
    augmented copies (crop, flip) of each training image, their features cached like the
    originals'. ``interpolation``: the resize filter (default: the base's own); the trained
    model records it and resizes with it wherever it is used. Nothing is written at
    ``output`` unless training finishes.
    """
    if mode not in ("head", "finetune"):
        raise ZooError(f"--mode must be head or finetune, not {mode!r}")
    registry = get_registry()
    spec = registry.model(base)
    preprocessing = registry.preprocessor(spec)
    path, name = bundle.destination(output)
    owner = registry.owners.get(("model", name))
    if owner is not None and owner != BUNDLES_PLUGIN:
        raise ZooError(f"-o {name}: plugin {owner!r} registers a model of that name already")
    protect = [("the data being trained on", Path(data))]
    check_replaceable(path, bundle.BUNDLE, protect)  # now, not after minutes of work
    interpolation = interpolation or spec.interpolation
    base_model = Base(spec, preprocessing, weights, resolve_weights(spec, weights), interpolation)
    dataset = scan(Path(data), val_split, seed)
    status(
        f"{len(dataset.classes)} classes, {len(dataset.items)} images in {dataset.root}"
        + (f" ({len(dataset.stray_files)} non-image files ignored)" if dataset.stray_files else "")
    )
    cache = FeatureCache(base_model, provider, threads)
    jobs = [Job(item.path, item.sha256) for item in dataset.items]
    jobs += [
        Job(item.path, item.sha256, copy)
        for copy in range(1, augment + 1)
        for item in dataset.split("train")
    ]
    extraction = cache.extract(jobs, batch_size=batch_size, seed=seed)
    by_path = {str(item.path): item.relative for item in dataset.items}
    dataset.drop_unreadable({by_path[p]: reason for p, reason in extraction.unreadable.items()})

    started = time.monotonic()
    index = {label: i for i, label in enumerate(dataset.classes)}
    x_train, y_train = _arrays(dataset, "train", extraction.features, index, augment)
    x_val, y_val = _arrays(dataset, "val", extraction.features, index, 0)
    settings = HeadSettings(
        epochs, learning_rate, batch_size, dropout, patience, class_weight, seed
    )
    head = train_head(
        x_train,
        y_train,
        x_val,
        y_val,
        len(dataset.classes),
        settings,
        on_epoch or (lambda record: None),
    )
    history = [{**record, "phase": "head"} for record in head.history]
    kernel, bias, finetuned_weights = head.kernel, head.bias, None
    train_seconds = time.monotonic() - started
    majority = int(np.bincount(y_train, minlength=len(dataset.classes)).argmax())

    def evaluate_split(split: str, probabilities: np.ndarray) -> dict:
        items = dataset.split(split)
        labels = np.array([index[item.label] for item in items], np.int64)
        return classification_report(
            labels, probabilities, dataset.classes, [i.relative for i in items], majority
        )

    with atomic_directory(path, bundle.BUNDLE, protect) as folder:
        if mode == "finetune":
            from .finetune import finetune

            started = time.monotonic()
            tuning = FinetuneSettings(unfreeze, finetune_epochs or epochs, finetune_learning_rate)
            tuned = finetune(
                base_model, dataset, head, settings, tuning, name, folder, len(history), on_epoch
            )
            history += tuned.history
            finetuned_weights, kernel, bias = tuned.base_weights, tuned.kernel, tuned.bias
            train_seconds += time.monotonic() - started
            splits = tuned.probabilities
        else:
            splits = {
                split: softmax(
                    _arrays(dataset, split, extraction.features, index, 0)[0] @ kernel + bias
                )
                for split in ("val", "test")
                if dataset.split(split)
            }
        report = _report(
            dataset,
            base_name=spec.name,
            mode=mode,
            history=history,
            head=head,
            metrics={split: evaluate_split(split, p) for split, p in splits.items()},
            extraction=extraction,
            train_seconds=train_seconds,
            augment=augment,
            settings=settings,
        )
        _write_bundle(folder, name, base_model, dataset, report, finetuned_weights, kernel, bias)
    return TrainResult(name, path, report)


def _arrays(dataset: Dataset, split: str, features: dict, index: dict, copies: int):
    keys, labels = [], []
    for item in dataset.split(split):
        for copy in range(copies + 1):
            keys.append(Job(item.path, item.sha256, copy).key)
            labels.append(index[item.label])
    if not keys:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.stack([features[k] for k in keys]).astype(np.float32), np.array(labels, np.int64)


def _report(
    dataset, base_name, mode, history, head, metrics, extraction, train_seconds, augment, settings
) -> dict:
    counts = dataset.counts()
    train_counts = {label: c["train"] for label, c in counts.items()}
    warnings = [
        f"class {label!r} has only {n} training images"
        for label, n in train_counts.items()
        if n < TINY_CLASS
    ]
    smallest, largest = min(train_counts.values()), max(train_counts.values())
    if smallest and largest / smallest > IMBALANCE:
        warnings.append(
            f"classes are imbalanced ({largest} vs {smallest} training images); "
            "consider --class-weight balanced"
        )
    return {
        "base": base_name,
        "mode": mode,
        "classes": list(dataset.classes),
        "counts": counts,
        "warnings": warnings,
        "unreadable": dataset.unreadable,
        "stray_files": len(dataset.stray_files),
        "settings": {**settings.__dict__, "augment": augment},
        "history": history,
        "best_epoch": head.best_epoch,
        "metrics": metrics,
        "features": {
            "runtime": extraction.runtime,
            "computed": extraction.computed,
            "cached": extraction.cached,
            "agreement_with_keras": extraction.agreement,
            "seconds": round(extraction.seconds, 3),
        },
        "train_seconds": round(train_seconds, 3),
    }


def _write_bundle(
    folder: Path,
    name: str,
    base: Base,
    dataset: Dataset,
    report: dict,
    finetuned: Path | None,
    kernel: np.ndarray,
    bias: np.ndarray,
) -> None:
    """The model (the base's weights, fine-tuned or not, with the head's), its card, the
    split manifest, the report and a few validation photos to verify exports on."""
    spec = base.spec
    base_file = finetuned or base.weights_path or _random_init_weights(spec, folder)
    suffix = ".weights.h5" if base_file.name.endswith(".weights.h5") else ".h5"
    weights_file = folder / f"model{suffix}"
    write_weights(base_file, kernel, bias, weights_file)
    if base_file.parent == folder:
        base_file.unlink()
    verification = _keep_photos(
        dataset, "val", VERIFICATION_IMAGES_PER_CLASS, folder, "verification"
    )
    per_class = max(1, CALIBRATION_IMAGES // len(dataset.classes))
    calibration = _keep_photos(dataset, "train", per_class, folder, "calibration")
    val = report["metrics"]["val"]
    card = {
        "format": bundle.FORMAT,
        "format_version": bundle.FORMAT_VERSION,
        "name": name,
        "description": f"{len(dataset.classes)} classes on {spec.name} ({report['mode']}), "
        f"val top-1 {val['top1']:.3f}",
        "base": {
            "model": spec.name,
            "weights": str(base.weights),
            "weights_sha256": file_digest(base.weights_path) if base.weights_path else None,
        },
        "input_size": list(spec.input_size),
        "preprocess": base.preprocessing.to_dict(),
        "interpolation": base.interpolation,
        "labels": [[label, label] for label in dataset.classes],
        "head": {"dropout": report["settings"]["dropout"]},
        "mode": report["mode"],
        "weights_file": weights_file.name,
        "weights_sha256": file_digest(weights_file),
        "verification_images": verification,
        "calibration_images": calibration,
        "metrics": {k: val[k] for k in ("images", "top1", "baseline_top1", "macro_f1")},
        "zoo_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (folder / "manifest.json").write_text(json.dumps(dataset.manifest(), indent=1))
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    (folder / bundle.CARD).write_text(json.dumps(card, indent=1))


def _keep_photos(
    dataset: Dataset, split: str, per_class: int, folder: Path, subfolder: str
) -> list[str]:
    """Copies of the first ``per_class`` photos of each class in ``split``, in the bundle's
    ``subfolder``; their paths in the bundle."""
    (folder / subfolder).mkdir()
    kept = []
    for label in dataset.classes:
        for item in [i for i in dataset.split(split) if i.label == label][:per_class]:
            target = f"{subfolder}/{item.relative.replace('/', '__')}"
            shutil.copyfile(item.path, folder / target)
            kept.append(target)
    return kept


def _random_init_weights(spec, folder: Path) -> Path:
    """A random-init base has no weights file: save the seeded one zoo builds."""
    from ..keras_model import build_keras_model

    path = folder / "base.weights.h5"
    build_keras_model(spec, None).save_weights(path)
    return path
