"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """A temporary path beside ``destination``, renamed onto it if the block succeeds and
    removed if it fails or is interrupted. The file gets the permissions a plain ``open``
    would give it (``mkstemp``'s are owner-only)."""
    fd, name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(_default_mode(0o666))
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(destination: Path) -> Iterator[Path]:
    """A temporary folder beside ``destination``, moved onto it if the block succeeds and
    removed if it fails or is interrupted; it gets the permissions of a plain ``mkdir``.

    An existing ``destination`` folder is replaced: moved aside, the new one moved in, the
    old one deleted. A reader sees the old folder or the new one, never a mixture (between
    the two renames, for an instant, neither).
    """
    temporary = Path(
        tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    )
    aside = temporary.with_name(f"{temporary.name}.old")
    try:
        yield temporary
        temporary.chmod(_default_mode(0o777))
        if destination.is_dir():
            os.replace(destination, aside)
        try:
            os.replace(temporary, destination)
        except OSError:
            if aside.exists():
                os.replace(aside, destination)
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)


def _default_mode(mode: int) -> int:
    """``mode`` less the process's umask: what ``open`` or ``mkdir`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask
