"""Reading a file the user names (a labels file, a card, a model): once, from one descriptor,
within a bound.

A path is only a name: between a check and a read it can become a FIFO (a read that never
returns), ``/dev/zero`` (one that never ends) or another file. So a user's file is opened once,
without blocking (a FIFO opens at once), and everything after that is asked of the open
descriptor: that it is a regular file, its size (``fstat``) against the bound, the bytes (at
most the bound, whatever ``fstat`` said). A file that changed meanwhile (another size, another
modification time, or the path now naming another file) is refused: the bytes read may be
half of one version and half of another.

Each kind of file has a ``Bound`` with a default and an environment variable that raises it,
both stated in the refusal (and in docs/errors.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.base.errors import ZooError
from zoo.base.printing import printable

MIB = 2**20
_CHUNK = MIB

FILE_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}
"""What a path that is not a regular file is, in words."""


class UserFileError(ZooError):
    """A file the user named that zoo will not read: not a regular file, over its bound,
    unreadable, or changed while it was read. ``reason`` is the message without the name."""

    def __init__(self, label: str, reason: str):
        self.label, self.reason = label, reason
        super().__init__(f"{label}: {reason}")


class MissingFile(UserFileError):
    """The path names nothing."""


@dataclass(frozen=True)
class Bound:
    """The most bytes zoo reads of one kind of file, raised by an environment variable
    (in MiB)."""

    what: str
    """The kind of file, as a refusal names it (``"a labels file"``)."""
    default_mib: float
    variable: str
    """The environment variable that raises (or lowers) it, in MiB."""

    def limit(self) -> int:
        """The bound in bytes: ``variable``'s, else the default."""
        text = os.environ.get(self.variable, "").strip()
        if not text:
            return int(self.default_mib * MIB)
        try:
            mib = float(text)
        except ValueError:
            mib = -1.0
        if not 0 < mib < float("inf"):
            raise UserFileError(f"${self.variable}={text!r}", "a size in MiB above 0, please")
        return int(mib * MIB)


@dataclass(frozen=True)
class Identity:
    """What says a file is still the one that was read: the file (device, inode), its size
    and modification time."""

    device: int
    inode: int
    size: int
    modified_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> Identity:
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


class UserFile:
    """A user's file, open: ``path`` as given, ``resolved`` (the path resolved once, for
    whatever must name the file again), the descriptor ``fd`` and what ``fstat`` said of it
    when it was opened (``identity``)."""

    def __init__(self, path: Path, resolved: Path, fd: int, identity: Identity, label: str):
        self.path, self.resolved, self.fd, self.identity = path, resolved, fd, identity
        self._label = label

    def read(self, bound: Bound) -> bytes:
        """The whole file, read from the descriptor: refused over ``bound`` (by ``fstat``,
        before reading, and by what the read returned), or when it changed while read."""
        limit = bound.limit()
        if self.identity.size > limit:
            raise self._over(bound, f"{self.identity.size:,} bytes", limit)
        chunks, total = [], 0
        with self._reading():
            os.lseek(self.fd, 0, os.SEEK_SET)
            while chunk := os.read(self.fd, min(_CHUNK, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise self._over(bound, "more than that while it was read", limit)
        self.check_unchanged()
        return b"".join(chunks)

    def check_unchanged(self) -> None:
        """Refuse a file that is no longer what was opened: written to, truncated, or its path
        now naming another file."""
        with self._reading():
            now = Identity.of(os.fstat(self.fd))
        try:
            named = Identity.of(os.stat(self.resolved))
        except OSError:
            named = None
        if now != self.identity or named != self.identity:
            raise UserFileError(
                self._label,
                "changed while zoo read it (written to, or replaced); try again once nothing "
                "is writing it",
            )

    def _over(self, bound: Bound, figure: str, limit: int) -> UserFileError:
        return UserFileError(
            self._label,
            f"{figure}, over the bound for {bound.what} ({limit / MIB:g} MiB); not read (raise "
            f"it with {bound.variable}=MIB)",
        )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise UserFileError(self._label, f"cannot read ({error.strerror or error})") from None


def missing_reason(path: str | os.PathLike) -> str:
    """Why ``path`` is not a regular file zoo can open, in words: ``no such file``, or ``not a
    regular file (a named pipe)`` and the like (a FIFO given as a model is not missing)."""
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
    except OSError:
        return "no such file"
    if kind == stat.S_IFREG:
        return "cannot open"
    return f"not a regular file ({FILE_KINDS.get(kind, 'a special file')})"


@contextlib.contextmanager
def open_user_file(path: str | os.PathLike, label: str | None = None) -> Iterator[UserFile]:
    """``path``, opened once as a regular file (a FIFO, a device, a socket or a folder is
    refused in one line, without waiting on it); ``label`` names it in refusals (default: the
    path). The descriptor is closed on leaving the block."""
    path = Path(path)
    label = label or printable(str(path))
    try:
        resolved = path.resolve()
        fd = os.open(  # resolved: no link left to follow, unless one was put there since
            resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW
        )
    except FileNotFoundError:
        raise MissingFile(label, "no such file") from None
    except PermissionError:
        raise UserFileError(label, "permission denied") from None
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop, to resolve
        reason = getattr(error, "strerror", None) or error
        raise UserFileError(label, f"cannot open ({reason})") from None
    try:
        status = os.fstat(fd)
        kind = stat.S_IFMT(status.st_mode)
        if kind != stat.S_IFREG:
            kind_name = FILE_KINDS.get(kind, "a special file")
            raise UserFileError(label, f"not a regular file ({kind_name})")
        os.set_blocking(fd, True)
        yield UserFile(path, resolved, fd, Identity.of(status), label)
    finally:
        os.close(fd)


def read_user_file(path: str | os.PathLike, bound: Bound, label: str | None = None) -> bytes:
    """The bytes of the user's file ``path``, read as ``open_user_file`` and ``UserFile.read``
    say: a regular file, within ``bound``, unchanged while read."""
    with open_user_file(path, label) as file:
        return file.read(bound)


CARD_FILE = Bound("a model card", 64, "ZOO_MAX_CARD_MB")
"""A trained or imported model's ``card.json``: its labels are most of it (64 MiB holds
400,000 of them)."""


def read_json_file(path: str | os.PathLike, bound: Bound, label: str | None = None) -> Any:
    """The JSON document in the user's file ``path``, read as ``read_user_file`` reads it;
    anything but UTF-8 JSON (JSON nested deeper than Python's parser goes included) is a
    ``UserFileError``, ``MissingFile`` where there is no file."""
    label = label or printable(str(path))
    data = read_user_file(path, bound, label)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise UserFileError(label, "not JSON (nested too deep)") from None
    except ValueError as error:  # UnicodeDecodeError included
        raise UserFileError(label, f"not JSON ({error})") from None
