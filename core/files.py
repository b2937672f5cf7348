"""Writing files so that a reader never sees half of one, and a killed writer leaves nothing
for good.

Every temporary file or folder beside a destination is hidden and named after the destination
and the process that owns it: ``.NAME.pid1234.k3x9q.tmp``. A process killed outright (SIGKILL,
a power cut) cannot remove its own; the next write to the same destination removes those whose
process no longer exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """A temporary path beside ``destination``, renamed onto it if the block succeeds and
    removed if it fails or is interrupted. The file gets the permissions a plain ``open``
    would give it (``mkstemp``'s are owner-only)."""
    remove_stale_temporaries(destination)
    fd, name = tempfile.mkstemp(dir=destination.parent, **_temporary_affixes(destination))
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
    with scratch_directory(destination) as temporary:
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
            shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def scratch_directory(destination: Path) -> Iterator[Path]:
    """A hidden working folder beside ``destination`` (on its file system, so that what is
    made there can be renamed onto it), removed afterwards."""
    remove_stale_temporaries(destination)
    temporary = Path(tempfile.mkdtemp(dir=destination.parent, **_temporary_affixes(destination)))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def remove_stale_temporaries(destination: Path) -> list[Path]:
    """Remove the temporaries beside ``destination`` left by processes that no longer exist;
    returns what was removed. Another live process's (a concurrent write) are kept."""
    pattern = re.compile(rf"\.{re.escape(destination.name)}\.pid(\d+)\.[^.]+\.tmp(\.old)?")
    removed = []
    with contextlib.suppress(OSError):
        for entry in destination.parent.iterdir():
            found = pattern.fullmatch(entry.name)
            if found and not _process_exists(int(found.group(1))):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def _temporary_affixes(destination: Path) -> dict[str, str]:
    return {"prefix": f".{destination.name}.pid{os.getpid()}.", "suffix": ".tmp"}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's
        return True
    return True


def _default_mode(mode: int) -> int:
    """``mode`` less the process's umask: what ``open`` or ``mkdir`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask
