"""Finding a model's weights: Keras's own cache (``$KERAS_HOME/models``), a download into it,
an explicit file, or none (seeded random initialisation).

The download is zoo's own (not ``keras.utils.get_file``) so that it needs no TensorFlow, has a
timeout, writes nothing to stdout, and never leaves a partial file in the cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from zoo.base.errors import WeightsUnavailable
from zoo.base.files import atomic_path
from zoo.base.progress import progress_bar
from zoo.model.spec import ModelSpec, WeightsSpec

DOWNLOAD_TIMEOUT_S = 30
WEIGHTS_HELP = (
    "imagenet (the model's published weights; 'pretrained' is the same), none (random init), "
    "or a .h5/.weights.h5 path"
)


PUBLISHED = ("imagenet", "pretrained")
"""The names of a model's published weights: "pretrained" reads better for one not trained on
ImageNet."""
RANDOM_INIT = "none"


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from, as ``--weights`` or a model card says it: the
    model's published weights, seeded random initialisation, or a file."""

    file: Path | None = None
    """The weights file; None for the published weights or random init."""
    published: bool = False

    @classmethod
    def parse(cls, value: str | os.PathLike | WeightsSource) -> WeightsSource:
        """The one reading of a weights value: "imagenet" or "pretrained", "none", else a path
        (a card records only the file's name)."""
        if isinstance(value, WeightsSource):
            return value
        if value in PUBLISHED:
            return cls(published=True)
        if value == RANDOM_INIT:
            return cls()
        return cls(file=Path(value).expanduser())

    @property
    def random_init(self) -> bool:
        return self.file is None and not self.published

    def recorded(self) -> str:
        """As a model card records it: "imagenet", "none", or the file's name."""
        if self.file is not None:
            return self.file.name
        return PUBLISHED[0] if self.published else RANDOM_INIT

    def __str__(self) -> str:
        """As the user would write it again: the option's value."""
        return str(self.file) if self.file is not None else self.recorded()


def keras_home() -> Path:
    """Keras's cache root, by Keras's own rule.

    $KERAS_HOME, else ~/.keras (or /tmp/.keras when the home folder is read-only).
    """
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def resolve_weights(spec: ModelSpec, weights: str | os.PathLike | WeightsSource) -> Path | None:
    """The weights file to build ``spec`` with, or None for random init (``weights`` as
    ``WeightsSource.parse`` reads it)."""
    source = WeightsSource.parse(weights)
    if source.random_init:
        return None
    if source.published:
        if spec.weights is None:
            raise WeightsUnavailable(
                f"{spec.name} has no published weights; use --weights PATH or --weights none"
            )
        return fetch(spec.weights, model=spec.name)
    path = source.file
    if (
        spec.weights is not None
        and spec.weights.in_place
        and path.resolve() == in_place_path(spec.weights)
    ):
        return fetch(spec.weights, model=spec.name)  # its own file, or SavedModel folder
    if not path.is_file():
        raise WeightsUnavailable(f"weights file not found: {path} (expected {WEIGHTS_HELP})")
    if not (path.name.endswith(".h5") or path.name.endswith(".keras")):
        raise WeightsUnavailable(f"{path}: not a Keras weights file (.h5, .weights.h5 or .keras)")
    return path


def in_place_path(weights: WeightsSpec) -> Path:
    """The file (or SavedModel folder) ``in_place`` weights are read from, where they are."""
    return Path(unquote(urlparse(weights.url).path))


def fetch(weights: WeightsSpec, model: str) -> Path:
    """The published weights file from Keras's cache, downloading it there when missing; an
    ``in_place`` file where it is."""
    path = keras_home() / "models" / weights.file_name
    if weights.in_place:
        path = in_place_path(weights)
        if not path.exists():
            raise WeightsUnavailable(
                f"{path}: gone, and {model} is read from it; import (or train) it again"
            )
    elif not path.is_file():
        _download(weights, path, model)
    if weights.file_hash and file_digest(path, _algorithm(weights.file_hash)) != weights.file_hash:
        if weights.in_place:
            raise WeightsUnavailable(
                f"{path} does not match the sha256 recorded for {model} ({weights.file_hash}): "
                "it changed since it was read; import it again"
            )
        raise WeightsUnavailable(
            f"{path} does not match the {_algorithm(weights.file_hash)} Keras publishes for "
            f"{model} ({weights.file_hash}); delete it to download it again, or pass --weights PATH"
        )
    return path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The file's hex digest, computed once per process while its size and mtime stay the
    same: loading and exporting a model ask for it several times (VGG16's file is 528 MB). A
    folder (a SavedModel's) has the digest of its files (``folder_digest``), computed once
    while its files' names, sizes and mtimes (``folder_files``) stay the same."""
    if path.is_dir():
        return _folder_digest(path.resolve(), folder_files(path))
    stat = path.stat()
    return _digest(path.resolve(), algorithm, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: Path, algorithm: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _algorithm(file_hash: str) -> str:
    return "sha256" if len(file_hash) == 64 else "md5"


def _download(weights: WeightsSpec, path: Path, model: str) -> None:
    """Download to a temporary file beside ``path``, then rename: never a partial file."""
    import urllib.request  # 20 ms that only a download needs

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(weights.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = progress_bar(f"downloading {weights.file_name}", total, unit="B")
            with atomic_path(path) as partial, partial.open("wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            bar.close()
    except (OSError, ValueError) as error:  # URLError and socket timeouts are OSErrors
        reason = getattr(error, "reason", None) or error
        raise WeightsUnavailable(
            f"{model}: {weights.file_name} is not in the Keras cache ({path.parent}) and could "
            f"not be downloaded ({reason}); copy it there (or set KERAS_HOME), "
            "or pass --weights PATH"
        ) from None


def folder_files(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(path within the folder, size, mtime in ns) of each of its regular files, in a fixed
    order: what a folder's digest is cached by, and how a change while it is read is seen."""
    files = []
    for path in _regular_files(folder):
        stat = path.stat()
        files.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(files)


@functools.lru_cache(maxsize=8)
def _folder_digest(folder: Path, files: tuple) -> str:
    return folder_digest(folder)


def _regular_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def folder_digest(folder: Path, copy_to: Path | None = None) -> str:
    """The sha256 of the folder's regular files: their paths and contents, in a fixed order.
    With ``copy_to``, each file is also written there as it is read, so that what is copied
    is what was hashed (and nothing but regular files: never a device a link points to)."""
    digest = hashlib.sha256()
    for path in _regular_files(folder):
        relative = path.relative_to(folder)
        digest.update(str(relative).encode() + b"\0")
        out = None
        if copy_to is not None:
            (copy_to / relative).parent.mkdir(parents=True, exist_ok=True)
            out = (copy_to / relative).open("wb")
        with path.open("rb") as file, out or contextlib.nullcontext():
            while chunk := file.read(1 << 20):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
    return digest.hexdigest()
