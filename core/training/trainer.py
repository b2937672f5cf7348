"""``zoo.train``: a labelled image folder in, a bundle (a model like any other) out."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import time
from pathlib import Path

import numpy as np

from zoo.base.errors import ZooError
from zoo.base.files import atomic_directory, check_replaceable
from zoo.base.progress import status
from zoo.base.version import __version__
from zoo.distributed import RayOptions
from zoo.model.input_config import InputOverrides, resolve
from zoo.plugin.registry import get_registry
from zoo.runtime.scores import softmax
from zoo.sources import bundle
from zoo.sources.bundle_network import write_weights
from zoo.sources.model_file import source_file
from zoo.sources.weights import file_digest, resolve_weights
from zoo.training.base import Base
from zoo.training.dataset import Dataset, scan
from zoo.training.distributed import RayFeatures
from zoo.training.features import FeatureCache, FeatureTask
from zoo.training.head import HeadSettings, train_head
from zoo.training.metrics import classification_report
from zoo.training.reports import REPORT_FILE, TrainReport
from zoo.training.settings import DEFAULTS, FinetuneSettings, TrainSettings

VERIFICATION_IMAGES_PER_CLASS = 3
"""Validation photos per class kept in the bundle: exports are verified on them."""
CALIBRATION_IMAGES = 200
"""Training photos kept in the bundle (as many per class as fit, at least one): int8 exports
are calibrated on them."""
TINY_CLASS = 10
"""A class with fewer training images than this gets a warning."""
IMBALANCE = 3.0
"""Largest over smallest class (training images) beyond which the report warns."""


def train(
    base: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    settings: TrainSettings = DEFAULTS,
    *,
    weights: str | os.PathLike = "imagenet",
    provider: str = "auto",
    threads: int = 0,
    on_epoch=None,
    engine: RayOptions | None = None,
) -> TrainReport:
    """Train a classifier of DATA's classes on BASE's frozen features; write it as a bundle.

    ``settings.mode="finetune"`` then unfreezes the base's top layers and trains on, batch
    normalisation kept in inference mode (see ``TrainSettings``). The trained model records the
    resize filter it was trained with (``settings.interpolation``) and resizes that way wherever
    it is used. Nothing is written at ``output`` unless training finishes.

    ``engine``: the features not cached yet are computed by a pool of Ray actors (the same
    vectors, into the same cache); the head trains here.
    """
    registry = get_registry()
    spec = registry.model(base)
    path, name = bundle.destination(output)
    existing = registry.models.get(registry.aliases.get(name, name))
    if existing is not None and not bundle.is_trained(existing):
        owner = registry.owners[("model", name)]
        raise ZooError(f"-o {name}: plugin {owner!r} registers a model of that name already")
    bundle.check_distribution_clash(name, registry.models)
    protect = [("the data being trained on", Path(data))]
    check_replaceable(path, bundle.BUNDLE, protect)  # now, not after minutes of work
    overrides = InputOverrides(interpolation=settings.interpolation)
    config = resolve(registry.input_config(spec), overrides)
    base_model = Base(spec, config, weights, resolve_weights(spec, weights))
    seed, augment, batch_size = settings.seed, settings.augment, settings.batch_size
    dataset = scan(Path(data), settings.val_split, seed)
    status(
        f"{len(dataset.classes)} classes, {len(dataset.items)} images in {dataset.root}"
        + (f" ({len(dataset.stray_files)} non-image files ignored)" if dataset.stray_files else "")
    )
    cache = FeatureCache(base_model, provider, threads)
    tasks = [FeatureTask(item.path, item.sha256) for item in dataset.items]
    tasks += [
        FeatureTask(item.path, item.sha256, copy)
        for copy in range(1, augment + 1)
        for item in dataset.split("train")
    ]
    on_ray = RayFeatures(engine, provider) if engine else None
    extraction = cache.extract(tasks, batch_size=batch_size, seed=seed, engine=on_ray)
    by_path = {str(item.path): item.relative for item in dataset.items}
    dataset.drop_unreadable({by_path[p]: reason for p, reason in extraction.unreadable.items()})

    started = time.monotonic()
    index = {label: i for i, label in enumerate(dataset.classes)}
    x_train, y_train = _arrays(dataset, "train", extraction.features, index, augment)
    x_val, y_val = _arrays(dataset, "val", extraction.features, index, 0)
    head_settings = HeadSettings(
        settings.epochs,
        settings.learning_rate,
        batch_size,
        settings.dropout,
        settings.patience,
        settings.class_weight,
        seed,
    )
    head = train_head(
        x_train,
        y_train,
        x_val,
        y_val,
        len(dataset.classes),
        head_settings,
        on_epoch or (lambda record: None),
    )
    history = [{**record, "phase": "head"} for record in head.history]
    kernel, bias, finetuned_weights, refit = head.kernel, head.bias, None, None
    activations = None
    if settings.refit and settings.mode == "head" and len(x_val):
        labelled = len(dataset.split("train")) + len(dataset.split("val"))
        refit = {"epochs": head.best_epoch, "images": labelled}
        everything = train_head(
            np.concatenate([x_train, x_val]),
            np.concatenate([y_train, y_val]),
            None,
            None,
            len(dataset.classes),
            dataclasses.replace(head_settings, epochs=head.best_epoch, patience=None),
        )
        kernel, bias = everything.kernel, everything.bias
    train_seconds = time.monotonic() - started
    majority = int(np.bincount(y_train, minlength=len(dataset.classes)).argmax())

    def evaluate_split(split: str, probabilities: np.ndarray) -> dict:
        items = dataset.split(split)
        labels = np.array([index[item.label] for item in items], np.int64)
        return classification_report(
            labels, probabilities, dataset.classes, [i.relative for i in items], majority
        )

    with atomic_directory(path, bundle.BUNDLE, protect) as folder:
        if settings.mode == "finetune":
            from zoo.training.finetune import finetune

            started = time.monotonic()
            tuning = FinetuneSettings(
                settings.unfreeze,
                settings.finetune_epochs or settings.epochs,
                settings.finetune_learning_rate,
                augment + 1,
                settings.activation_cache_gb,
            )
            tuned = finetune(
                base_model, dataset, head, head_settings, tuning, name, folder, len(history),
                on_epoch,
            )  # fmt: skip
            history += tuned.history
            finetuned_weights, kernel, bias = tuned.base_weights, tuned.kernel, tuned.bias
            train_seconds += time.monotonic() - started
            splits, activations = tuned.probabilities, tuned.activations
        else:  # the validation images are scored by the head that did not train on them
            heads = {"val": (head.kernel, head.bias), "test": (kernel, bias)}
            splits = {
                split: softmax(
                    _arrays(dataset, split, extraction.features, index, 0)[0] @ heads[split][0]
                    + heads[split][1]
                )
                for split in ("val", "test")
                if dataset.split(split)
            }
        report = _report(
            name,
            path,
            dataset,
            base_name=spec.name,
            history=history,
            head=head,
            metrics={split: evaluate_split(split, p) for split, p in splits.items()},
            extraction=extraction,
            train_seconds=train_seconds,
            settings=settings,
            refit=refit,
            activations=activations,
        )
        _write_bundle(folder, name, base_model, dataset, report, finetuned_weights, kernel, bias)
    return report


def _arrays(dataset: Dataset, split: str, features: dict, index: dict, copies: int):
    keys, labels = [], []
    for item in dataset.split(split):
        for copy in range(copies + 1):
            keys.append(FeatureTask(item.path, item.sha256, copy).key)
            labels.append(index[item.label])
    if not keys:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.stack([features[k] for k in keys]).astype(np.float32), np.array(labels, np.int64)


def _report(
    name: str,
    path: Path,
    dataset: Dataset,
    base_name: str,
    history: list[dict],
    head,
    metrics: dict,
    extraction,
    train_seconds: float,
    settings: TrainSettings,
    refit: dict | None,
    activations: dict | None,
) -> TrainReport:
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
    return TrainReport(
        name=name,
        path=path,
        base=base_name,
        mode=settings.mode,
        classes=list(dataset.classes),
        counts=counts,
        warnings=warnings,
        unreadable=dataset.unreadable,
        stray_files=len(dataset.stray_files),
        settings=dataclasses.asdict(settings),
        history=history,
        best_epoch=head.best_epoch,
        metrics=metrics,
        features={
            "runtime": extraction.runtime,
            "computed": extraction.computed,
            "cached": extraction.cached,
            "agreement_with_keras": extraction.agreement,
            "seconds": round(extraction.seconds, 3),
        },
        train_seconds=round(train_seconds, 3),
        refit=refit,
        activations=activations,
    )


def _write_bundle(
    folder: Path,
    name: str,
    base: Base,
    dataset: Dataset,
    report: TrainReport,
    finetuned: Path | None,
    kernel: np.ndarray,
    bias: np.ndarray,
) -> None:
    """The model (the base's weights, fine-tuned or not, with the head's), its card, the
    split manifest, the report and a few validation photos to verify exports on."""
    spec = base.spec
    base_file = finetuned or _weights_file(base, folder)
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
    val = report.metrics["val"]
    card = bundle.BundleCard(
        name=name,
        description=f"{len(dataset.classes)} classes on {spec.name} ({report.mode}), "
        f"val top-1 {val['top1']:.3f}",
        base=bundle.BaseRecord(
            str(source_file(spec) or spec.name),
            str(base.weights),
            file_digest(base.weights_path) if base.weights_path else None,
        ),
        input=dataclasses.replace(
            base.input, labels=tuple((label, label) for label in dataset.classes)
        ),
        dropout=report.settings["dropout"],
        mode=report.mode,
        weights_file=weights_file.name,
        weights_sha256=file_digest(weights_file),
        verification_images=tuple(verification),
        calibration_images=tuple(calibration),
        metrics={k: val[k] for k in ("images", "top1", "baseline_top1", "macro_f1")},
        zoo_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    (folder / bundle.MANIFEST).write_text(bundle.dumps(dataset.manifest()))
    (folder / REPORT_FILE).write_text(bundle.dumps(report.to_dict()))
    card.write(folder)


def _keep_photos(
    dataset: Dataset, split: str, per_class: int, folder: Path, subfolder: str
) -> list[str]:
    """Copies of the first ``per_class`` photos of each class in ``split``, in the bundle's
    ``subfolder``; their paths in the bundle. Each is numbered, so names stay unique however
    the photos' own paths flatten."""
    (folder / subfolder).mkdir()
    kept = []
    for label in dataset.classes:
        for item in [i for i in dataset.split(split) if i.label == label][:per_class]:
            target = f"{subfolder}/{len(kept):04d}-{item.relative.replace('/', '__')}"
            shutil.copyfile(item.path, folder / target)
            kept.append(target)
    return kept


def _weights_file(base: Base, folder: Path) -> Path:
    """The base's weights file; for a random-init base (which has none) or a Keras model file
    (the model, not a weights file), the weights zoo builds, saved."""
    if base.weights_path is not None and source_file(base.spec) is None:
        return base.weights_path
    from zoo.sources.keras_model import build_keras_model

    path = folder / "base.weights.h5"
    build_keras_model(base.spec, base.weights_path).save_weights(path)
    return path
