"""Feeding a model from many image files: decoding in threads, ahead of the model.

A thread pool decodes and resizes the next batches while the model runs on the current one
(Pillow releases the GIL while it decodes and resizes, ONNX Runtime and TensorFlow while they
run). At most ``PREFETCH_BATCHES`` batches are decoded ahead of the one the model works on,
so memory stays bounded over any number of files. Batches come out in input order; a file
that cannot be read is an item with its error, not an exception: one bad photo does not stop
a run over thousands.
"""

from __future__ import annotations

import glob
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.base.errors import ImageError, ZooError
from zoo.base.printing import error_record, record
from zoo.model.input_config import InputConfig
from zoo.runtime.images import decode_image, open_image, pixels_for
from zoo.runtime.samples import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from zoo.runtime.model import Model

PREFETCH_BATCHES = 2
"""Batches decoded ahead: one ready to hand over, one decoding."""


@dataclass
class Decoded:
    """One input file: its pixels at the model's size, or why it could not be read."""

    path: str
    pixels: np.ndarray | None = None
    error: ImageError | None = None


def default_workers() -> int:
    """Decoding threads: one per core the process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def expand_inputs(arguments: Sequence[str]) -> list[str]:
    """Files, folders and glob patterns, in the order given, as a list of files.

    A folder stands for the image files under it (recursively, sorted); a pattern for the
    files it matches (``**`` included). Anything else is kept as it is, so that a missing
    file is reported as that file's error. A folder or pattern without images is a
    ``ZooError``: most likely a typo, and silently classifying nothing would hide it.
    """
    files: list[str] = []
    for argument in arguments:
        if Path(argument).is_dir():
            found = sorted(
                str(path)
                for path in Path(argument).rglob("*")
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
            )
        elif glob.has_magic(argument):
            found = sorted(
                path for path in glob.glob(argument, recursive=True) if Path(path).is_file()
            )
        else:
            files.append(argument)
            continue
        if not found:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise ZooError(f"{argument}: no image files ({suffixes})")
        files += found
    return files


def decode(
    path: str, config: InputConfig, fast_decode: bool = False, data: bytes | None = None
) -> Decoded:
    """Read one file into ``config``'s model input (uint8), or into its error.

    ``data``: the file's bytes when something else has read them (Ray Data, say); decoded
    exactly as the file would be, and errors still name ``path``.
    """
    draft = config.size if fast_decode else None
    try:
        image = open_image(path, draft) if data is None else decode_image(data, path, draft)
        return Decoded(path, pixels=pixels_for(image, config))
    except ImageError as error:
        return Decoded(path, error=error)


def batch_records(model: Model, batch: Sequence[Decoded], top: int) -> list[dict]:
    """One record per item, in order: its top-``top`` classes, or its error.

    The images that decoded go through the model in one run; the others become error records.
    """
    good = [item for item in batch if item.error is None]
    tops = (
        iter(model.top(model.probabilities(np.stack([i.pixels for i in good])), top))
        if good
        else iter(())
    )
    return [
        error_record(item.path, item.error.reason)
        if item.error is not None
        else record(item.path, model.name, model.backend, next(tops))
        for item in batch
    ]


def decoded_batches(
    paths: Iterable[str],
    config: InputConfig,
    batch_size: int,
    workers: int = 0,
    fast_decode: bool = False,
) -> Iterator[list[Decoded]]:
    """``paths`` decoded ``batch_size`` at a time, in order, by ``workers`` threads."""
    files = iter(paths)
    pending: deque[Future[Decoded]] = deque()
    pool = ThreadPoolExecutor(workers or default_workers(), thread_name_prefix="zoo-decode")

    def submit_ahead() -> None:
        while len(pending) < batch_size * PREFETCH_BATCHES:
            path = next(files, None)
            if path is None:
                return
            pending.append(pool.submit(decode, path, config, fast_decode))

    try:
        submit_ahead()
        while pending:
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            submit_ahead()
            yield batch
    finally:
        # Stopped early (an error, Ctrl-C) or not: drop what is queued, and do not wait for a
        # decoder that is still busy (blocked on a slow disk, say), or the interrupt would wait.
        pool.shutdown(wait=False, cancel_futures=True)
