"""Writing files so that a reader never sees half of one, and a killed writer leaves nothing
for good.

Every temporary file or folder beside a destination is hidden and named after the destination
and the process that owns it: ``.NAME.pid1234.k3x9q.tmp``. A process killed outright (SIGKILL,
a power cut) cannot remove its own; the next write to the same destination removes those whose
process no longer exists.

Folders are written whole by ``atomic_directory``, the one helper every command that writes a
folder uses, and it holds the rule that zoo never deletes what it did not write: an existing
folder is replaced only when empty or marked as zoo's own of the same kind
(``check_replaceable``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zoo.base import jsonio
from zoo.base.errors import CannotWrite, DiskFull, ZooError
from zoo.base.paths import bundles_home, extra_bundle_roots, zoo_home
from zoo.base.version import __version__

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the file system is out of space or quota. ``shutil.copytree``
    gathers each file's error into one ``shutil.Error`` holding their texts."""
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        texts = [str(entry[-1]) for entry in error.args[0]]
        return any(f"[Errno {code}]" in text for text in texts for code in _DISK_FULL)
    return isinstance(error, OSError) and error.errno in _DISK_FULL


@contextlib.contextmanager
def _naming_a_full_disk(destination: Path) -> Iterator[None]:
    """A full disk while ``destination`` is written, as one error naming it: the write
    itself only says how many bytes it could not write."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(destination) from None
        raise


def _temporary_beside(destination: Path, folder: bool) -> Path:
    """A new hidden temporary file or folder beside ``destination``; a place zoo cannot
    write to (read-only, no permission, not a real folder) is ``CannotWrite``."""
    affixes = _temporary_affixes(destination)
    try:
        if folder:
            return Path(tempfile.mkdtemp(dir=destination.parent, **affixes))
        fd, name = tempfile.mkstemp(dir=destination.parent, **affixes)
        os.close(fd)
        return Path(name)
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(destination) from None
        raise CannotWrite(destination, error) from None


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """A temporary path beside ``destination``, renamed onto it if the block succeeds and
    removed if it fails or is interrupted. The file gets the permissions a plain ``open``
    would give it (``mkstemp``'s are owner-only). A full disk is ``DiskFull``."""
    remove_stale_temporaries(destination)
    temporary = _temporary_beside(destination, folder=False)
    with _naming_a_full_disk(destination):
        try:
            yield temporary
            temporary.chmod(_default_mode(0o666))
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder zoo writes whole (a bundle, a package, a Triton model entry).

    Every such folder carries a marker naming its kind, and zoo replaces an existing folder
    only when it is empty or carries the same kind's marker (or, for folders written before
    markers, when ``recognises`` says it is one): never a folder of the user's.
    """

    name: str
    recognises: Callable[[Path], bool] | None = None
    """For folders of this kind written before markers: whether ``folder`` is one."""


MARKER = ".zoo-folder.json"
"""The file in every folder ``atomic_directory`` writes, naming what kind of folder it is."""
_SWAP_ATTEMPTS = 50
"""Renames tried when other writers replace the same folder at the same moment (each after
a random pause of up to ``_SWAP_PAUSE_S``, so that racing writers fall out of step)."""
_SWAP_PAUSE_S = 0.02


class FolderRefused(ZooError):
    """A folder zoo was asked to write would replace, or contain, something it must not."""


def output_folder(text: str | os.PathLike) -> Path:
    """A folder named on the command line, refused when blank (an unset shell variable would
    otherwise name the working directory)."""
    if not str(text).strip():
        raise FolderRefused("an empty folder name is refused (is a shell variable unset?)")
    return Path(text).expanduser()


def check_replaceable(
    destination: Path, kind: FolderKind, protect: Iterable[tuple[str, Path]] = ()
) -> None:
    """Refuse, naming ``destination``, to write a ``kind`` there unless it is new, empty or a
    ``kind`` that zoo wrote, and never where it is, or contains, a folder that must stay:
    the working directory, the home directory, zoo's home and bundles, or ``protect``'s
    ``(what, path)`` pairs (the data being trained on, say)."""
    target = destination.resolve()
    for what, guarded in [*_always_protected(), *protect]:
        guarded = guarded.resolve()
        if target == guarded or guarded.is_relative_to(target):
            relation = "is" if target == guarded else "contains"
            raise FolderRefused(f"{destination}: refused: it {relation} {what} ({guarded})")
    for _ in range(_SWAP_ATTEMPTS):  # another writer may be renaming folders meanwhile
        verdict = _replaceable_now(destination, kind)
        if verdict is not None:
            if verdict:
                return
            raise FolderRefused(
                f"{destination}: exists and is not {_a(kind.name)} zoo wrote; refused, nothing "
                "was changed (name a new or empty folder)"
            )
    raise FolderRefused(f"{destination}: other processes keep replacing it; try again")


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: a bundle, an imported model."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _replaceable_now(destination: Path, kind: FolderKind) -> bool | None:
    """Whether the folder at ``destination`` may be replaced, read through one open handle
    (so from one folder, whatever is renamed meanwhile); None when another writer moved it
    while it was read (it may have been half deleted): ask again."""
    try:
        folder = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:  # new, or another writer is between its two renames
        return True
    except OSError as error:
        if error.errno in (errno.ENOTDIR, errno.ELOOP):
            reason = "exists and is not a folder; nothing was changed"
        else:
            reason = f"cannot be read ({error.strerror})"
        raise FolderRefused(f"{destination}: {reason}") from None
    try:
        if not os.listdir(folder) or _marked_kind(folder) == kind.name:
            return True
        if kind.recognises is not None and kind.recognises(destination):
            return True
        try:
            still_there = os.path.samestat(os.fstat(folder), destination.stat())
        except FileNotFoundError:
            still_there = False
        return False if still_there else None
    finally:
        os.close(folder)


def _marked_kind(folder: int) -> str | None:
    """The kind named by the marker in the open folder ``folder``, if it has one."""
    try:
        descriptor = os.open(MARKER, os.O_RDONLY, dir_fd=folder)
    except OSError:
        return None
    with open(descriptor, encoding="utf-8") as marker:
        try:
            content = json.load(marker)
        except (OSError, ValueError):
            return None
    return content.get("kind") if isinstance(content, dict) else None


def _always_protected() -> list[tuple[str, Path]]:
    guarded = [
        ("the working directory", Path.cwd()),
        ("zoo's home", zoo_home()),
        ("the trained models' folder", bundles_home()),
        *(("a folder of trained models ($ZOO_BUNDLES)", root) for root in extra_bundle_roots()),
    ]
    with contextlib.suppress(RuntimeError):  # no $HOME and no passwd entry
        guarded.append(("the home directory", Path.home()))
    return guarded


@contextlib.contextmanager
def atomic_directory(
    destination: Path, kind: FolderKind, protect: Iterable[tuple[str, Path]] = ()
) -> Iterator[Path]:
    """A temporary folder beside ``destination``, moved onto it if the block succeeds and
    removed if it fails or is interrupted; it gets the permissions of a plain ``mkdir`` and
    ``kind``'s marker.

    ``check_replaceable`` decides, before the block and again before the move, whether an
    existing ``destination`` may be replaced: moved aside, the new one moved in, the old one
    deleted. A reader sees the old folder or the new one, never a mixture (between the two
    renames, for an instant, neither). Among concurrent writers, the last one wins.
    """
    protect = list(protect)
    check_replaceable(destination, kind, protect)
    with scratch_directory(destination) as temporary:
        aside = temporary.with_name(f"{temporary.name}.old")
        try:
            yield temporary
            marker = {"kind": kind.name, "written_by": f"zoo {__version__}"}
            (temporary / MARKER).write_text(jsonio.dumps(marker) + "\n")
            temporary.chmod(_default_mode(0o777))
            _swap_in(temporary, destination, aside, kind, protect)
        finally:
            shutil.rmtree(aside, ignore_errors=True)


def _swap_in(temporary: Path, destination: Path, aside: Path, kind: FolderKind, protect) -> None:
    for _ in range(_SWAP_ATTEMPTS):
        check_replaceable(destination, kind, protect)  # it may have changed while we worked
        shutil.rmtree(aside, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):  # another writer's move may have taken it
            os.replace(destination, aside)
        try:
            os.replace(temporary, destination)
            return
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                if aside.exists() and not destination.exists():
                    os.replace(aside, destination)
                raise
            # Another writer moved its folder in between our two renames: go round again.
            time.sleep(random.uniform(0, _SWAP_PAUSE_S))
    raise FolderRefused(
        f"{destination}: other zoo processes kept replacing it at the same moment; try again"
    )


@contextlib.contextmanager
def scratch_directory(destination: Path) -> Iterator[Path]:
    """A hidden working folder beside ``destination`` (on its file system, so that what is
    made there can be renamed onto it), removed afterwards. A full disk is ``DiskFull``."""
    remove_stale_temporaries(destination)
    temporary = _temporary_beside(destination, folder=True)
    with _naming_a_full_disk(destination):
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


_OWN_TEMPORARIES = re.compile(r"zoo-tmp\.pid(\d+)\.[^.]+")


@contextlib.contextmanager
def own_temporaries() -> Iterator[Path]:
    """Within the block, what ``tempfile`` makes by default (a library's scratch files and
    folders: Keras extracts a ``.keras`` file's assets there) goes into a new folder of zoo's in
    the system's temporary folder, removed with all it holds however the block ends: an error,
    Ctrl-C, or SIGTERM (which zoo's CLI raises as an exception, ``zoo.base.interrupts``). A
    process killed outright cannot remove its own; the next one removes those whose process no
    longer exists. Usable as a decorator."""
    parent = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            found = _OWN_TEMPORARIES.fullmatch(entry.name)
            if found and not _process_exists(int(found.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"zoo-tmp.pid{os.getpid()}.", dir=parent))
    previous, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)
