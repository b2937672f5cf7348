"""Bounds on a user's Keras file, checked before Keras sees it.

Keras allocates what a file declares: a 2.7 KB ``.keras`` whose Dense kernel is declared
3.5 GiB (chunked, nothing stored) cost 16 GB of memory, a 2 MB zip whose ``config.json``
expands to 2 GiB of whitespace 4.7 GB, and Keras's own guards start at 4 GiB. So zoo measures
first, from what the archive and HDF5 headers say, without reading the data: the archive's
member count and expanded size, the config's size (read at most that far) and depth, and the
weights' total declared size (each dataset's shape times its dtype) against a budget that
follows the machine's memory, and against what the file stores. Over a bound: one line naming
the bound and the figure (a ``UserFileError``), before anything is allocated. Each bound has
an environment variable that raises it (docs/errors.md).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from zoo.base.user_files import MIB, Bound, UserFileError

CONFIG = Bound("a Keras file's config", 64, "ZOO_MAX_KERAS_CONFIG_MB")
"""``config.json`` (or an .h5's ``model_config``): a ResNet152's is 0.3 MiB."""

MEMBERS_VARIABLE = "ZOO_MAX_KERAS_MEMBERS"
MEMBERS_DEFAULT = 10_000
"""Files in a ``.keras`` archive: Keras writes three, plus a layer's assets."""

MAX_DEPTH = 200
"""Nesting of the config's JSON: a model nested in models is tens of levels deep."""

WEIGHTS_SHARE = 8
"""The weights' budget is physical memory / 8: loading a model costs several times its
weights (Keras's variables, the file's read buffers, an export's copies)."""


def physical_memory() -> int:
    """This machine's memory in bytes (4 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


WEIGHTS = Bound(
    f"a Keras file's weights (1/{WEIGHTS_SHARE} of this machine's memory)",
    physical_memory() / WEIGHTS_SHARE / MIB,
    "ZOO_MAX_KERAS_WEIGHTS_MB",
)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", MIB), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _over(label: str, figure: str, bound: Bound, limit: int) -> UserFileError:
    return UserFileError(
        label,
        f"{figure}, over the bound for {bound.what} ({limit / MIB:,.0f} MiB); not loaded "
        f"(raise it with {bound.variable}=MIB)",
    )


def member_limit(label: str) -> int:
    text = os.environ.get(MEMBERS_VARIABLE, "").strip()
    if not text:
        return MEMBERS_DEFAULT
    if not text.isdigit() or int(text) < 1:
        raise UserFileError(f"${MEMBERS_VARIABLE}={text!r}", "a count above 0, please")
    return int(text)


def check_archive(archive: zipfile.ZipFile, label: str) -> None:
    """The archive's member count, and its expanded size against the weights' budget plus the
    config's bound: a zip bomb is refused before one member is inflated."""
    members = archive.infolist()
    if len(members) > (most := member_limit(label)):
        raise UserFileError(
            label,
            f"an archive of {len(members):,} files, over the bound of {most:,}; not loaded "
            f"(raise it with {MEMBERS_VARIABLE}=COUNT)",
        )
    expanded = sum(member.file_size for member in members)
    limit = WEIGHTS.limit() + CONFIG.limit()
    if expanded > limit:
        raise UserFileError(
            label,
            f"an archive that expands to {_size(expanded)}, over the bound for a Keras file "
            f"(its weights' and its config's, {limit / MIB:,.0f} MiB); not loaded (raise it "
            f"with {WEIGHTS.variable}=MIB)",
        )


def read_member(archive: zipfile.ZipFile, name: str, bound: Bound, label: str) -> bytes:
    """Member ``name``, read at most ``bound`` far whatever its header declares."""
    limit = bound.limit()
    declared = archive.getinfo(name).file_size  # KeyError when missing
    if declared > limit:
        raise _over(f"{label}: {name}", f"{declared:,} bytes", bound, limit)
    with archive.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise _over(f"{label}: {name}", "more than declared", bound, limit)
    return data


def parse_config(data: bytes | str, label: str) -> dict:
    """The config's JSON as a dict, its size within ``CONFIG`` and its depth within
    ``MAX_DEPTH``; anything else one line."""
    limit = CONFIG.limit()
    if len(data) > limit:
        raise _over(label, f"a config of {len(data):,} bytes", CONFIG, limit)
    try:
        config = json.loads(data)
    except RecursionError:
        raise UserFileError(label, "its config is JSON nested too deep") from None
    except ValueError as error:  # UnicodeDecodeError included
        raise UserFileError(label, f"its config is not JSON ({error})") from None
    if not isinstance(config, dict):
        raise UserFileError(label, f"its config is a JSON {type(config).__name__}, not an object")
    if too_deep(config, MAX_DEPTH):
        raise UserFileError(label, f"its config is nested more than {MAX_DEPTH} levels deep")
    return config


def too_deep(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` levels (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def check_weights(h5file, label: str) -> None:
    """The total size the HDF5 file's datasets declare (shape times dtype, read from their
    headers, nothing loaded), against the weights' budget; and a file that declares weights
    it does not store (chunked, nothing written: Keras would allocate them all) refused."""
    import h5py

    declared = stored = 0
    unstored: list[str] = []

    def visit(name: str, item) -> None:
        nonlocal declared, stored
        if not isinstance(item, h5py.Dataset):
            return
        size = int(item.size or 0) * item.dtype.itemsize
        declared += size
        has_storage = item.id.get_storage_size()
        stored += has_storage
        if size and not has_storage and len(unstored) < 3:
            unstored.append(name)

    h5file.visititems(visit)
    limit = WEIGHTS.limit()
    if declared > limit:
        raise _over(label, f"weights declared as {_size(declared)}", WEIGHTS, limit)
    if unstored:
        raise UserFileError(
            label,
            f"declares weights it does not store ({', '.join(unstored)}: {_size(declared)} "
            f"declared, {_size(stored)} stored); not a file Keras saved, not loaded",
        )
