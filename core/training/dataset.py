"""A labelled image folder: its classes, its files, and a split that does not move.

Two layouts are read, those ``keras.utils.image_dataset_from_directory`` reads:

- ``DATA/<class>/<image>``: one sub-folder per class; the validation images are chosen here.
- ``DATA/train/<class>/...``, ``DATA/val/<class>/...`` (and optionally ``DATA/test/...``):
  the split is the user's.

The split is assigned per file, by a hash of its path relative to DATA and the seed: a file
goes to validation when its hash, as a fraction of the hash space, is below ``val_split``.
Adding photos therefore moves none of those already assigned, and each class gets about
``val_split`` of its images (stratified). A class whose hashes all fall on one side still
gets one validation and one training image: its smallest (largest) hash goes across.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from zoo.base.errors import ZooError
from zoo.base.user_files import read_user_file
from zoo.model.labels import check_labels
from zoo.runtime.images import IMAGE_FILE
from zoo.runtime.samples import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")
MIN_IMAGES_PER_CLASS = 2


class DatasetError(ZooError):
    """The data folder cannot be trained on as it is."""


@dataclass(frozen=True)
class Item:
    """One image file: where it is, its class, its split, and the hash of its bytes."""

    path: Path
    relative: str
    """Its path relative to DATA, with forward slashes: what the split is assigned by."""
    label: str
    split: str
    sha256: str


@dataclass
class Dataset:
    root: Path
    classes: tuple[str, ...]
    items: list[Item]
    layout: str
    """"folders" (the split made here) or "splits" (train/ val/ [test/] given)."""
    seed: int
    val_split: float
    stray_files: list[str] = field(default_factory=list)
    """Files that are not images by their suffix: counted, not used."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """relative path -> why it cannot be read; these are left out of ``items``."""

    def split(self, name: str) -> list[Item]:
        return [item for item in self.items if item.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """class -> split -> images."""
        table = {label: dict.fromkeys(SPLITS, 0) for label in self.classes}
        for item in self.items:
            table[item.label][item.split] += 1
        return table

    def manifest(self) -> dict:
        """The split written down: every file's class, split and content hash."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "seed": self.seed,
            "val_split": self.val_split if self.layout == "folders" else None,
            "classes": list(self.classes),
            "files": [
                {"path": i.relative, "class": i.label, "split": i.split, "sha256": i.sha256}
                for i in self.items
            ],
            "unreadable": self.unreadable,
            "stray_files": self.stray_files,
        }

    def drop_unreadable(self, reasons: dict[str, str]) -> None:
        """Leave out the files that failed to decode; re-split and re-check what is left."""
        if not reasons:
            return
        self.unreadable.update(reasons)
        candidates = [(i.path, i.relative, i.label, i.split, i.sha256) for i in self.items]
        kept = [c for c in candidates if c[1] not in reasons]
        self.items = _assign(kept, self.layout, self.seed, self.val_split)
        _check_classes(self.classes, self.items, self.unreadable)


def scan(root: Path, val_split: float = 0.2, seed: int = 0) -> Dataset:
    """Read DATA's layout and hash its images; a ``DatasetError`` for a layout zoo cannot use.

    Unreadable images are only found when they are decoded (``Dataset.drop_unreadable``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if not 0 < val_split < 1:
        raise DatasetError(f"--val-split must be between 0 and 1, not {val_split}")
    top_images = sorted(p.name for p in root.iterdir() if _is_image(p))
    if top_images:
        raise DatasetError(
            f"{root}: {len(top_images)} image(s) directly in the top folder "
            f"({top_images[0]}, ...); "
            "put each class's images in a sub-folder named after the class"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if {p.name for p in folders} & {"train", "val"} == {"train", "val"}:
        layout = "splits"
        split_folders = {p.name: p for p in folders if p.name in SPLITS}
        class_folders = {
            (split, c.name): c
            for split, folder in split_folders.items()
            for c in sorted(folder.iterdir())
            if c.is_dir() and not c.name.startswith(".")
        }
        classes = tuple(sorted({name for _, name in class_folders}))
    else:
        layout = "folders"
        class_folders = {("", c.name): c for c in folders}
        classes = tuple(c.name for c in folders)
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DatasetError(
            f"{root}: training needs at least 2 classes (one sub-folder each); found {found}"
        )
    check_labels(
        classes, str(root), "class folder", "; the folders' names are the labels: rename it"
    )
    candidates, stray = [], []
    for (split, label), folder in sorted(class_folders.items()):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if path.name.startswith("."):
                continue
            if not _is_image(path):
                stray.append(relative)
                continue
            candidates.append((path, relative, label, split, _file_sha256(path)))
    items = _assign(candidates, layout, seed, val_split)
    _check_classes(classes, items, {})
    return Dataset(root, classes, items, layout, seed, val_split, stray_files=stray)


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _file_sha256(path: Path) -> str:
    """The sha256 of an image's bytes, read as every user's file is (``read_user_file``): a
    file swapped for a FIFO or a device since it was listed is one line, not a hang."""
    return hashlib.sha256(read_user_file(path, IMAGE_FILE)).hexdigest()


def split_fraction(relative: str, seed: int) -> float:
    """Where a file falls in [0, 1): the hash of its relative path and the seed."""
    digest = hashlib.sha256(f"{seed}:{relative}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _assign(candidates: list[tuple], layout: str, seed: int, val_split: float) -> list[Item]:
    if layout == "splits":
        return [Item(path, rel, label, split, sha) for path, rel, label, split, sha in candidates]
    by_class: dict[str, list[tuple[float, tuple]]] = {}
    for candidate in candidates:
        by_class.setdefault(candidate[2], []).append(
            (split_fraction(candidate[1], seed), candidate)
        )
    items = []
    for entries in by_class.values():
        entries.sort(key=lambda entry: entry[0])
        splits = ["val" if fraction < val_split else "train" for fraction, _ in entries]
        if len(entries) >= MIN_IMAGES_PER_CLASS:
            splits[0] = "val"  # at least one image to validate on ...
            splits[-1] = "train"  # ... and one to train on
        for (_, (path, rel, label, _, sha)), split in zip(entries, splits, strict=True):
            items.append(Item(path, rel, label, split, sha))
    items.sort(key=lambda item: item.relative)
    return items


def _check_classes(classes: tuple[str, ...], items: list[Item], unreadable: dict) -> None:
    counts = Counter((item.label, item.split) for item in items)
    for label in classes:
        total = sum(n for (name, _), n in counts.items() if name == label)
        if total == 0:
            raise DatasetError(f"class {label!r} has no usable images (its folder is empty)")
        if total < MIN_IMAGES_PER_CLASS:
            bad = sum(1 for path in unreadable if f"/{label}/" in f"/{path}")
            note = f" ({bad} unreadable)" if bad else ""
            raise DatasetError(
                f"class {label!r} has {total} usable image{note}; each class needs at least "
                f"{MIN_IMAGES_PER_CLASS} (one to train on, one to validate on)"
            )
        for split in ("train", "val"):
            if counts[(label, split)] == 0:
                raise DatasetError(f"class {label!r} has no images in {split}/")
