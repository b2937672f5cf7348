"""Ctrl-C and SIGTERM as exceptions raised where zoo can take them.

The CLI turns SIGTERM into ``Terminated`` (a ``KeyboardInterrupt``), so both unwind the same
way and half-written files are removed on the way out. Inside a library's native loop (Keras's
``fit`` runs its steps in C++), an exception raised by a signal handler can surface as that
library's own error instead (``RuntimeError: pybind11::error_already_set``); ``deferred``
records the signal there and raises it once the loop has stopped.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound like Ctrl-C but reported (and exiting) as itself."""


def raise_terminated(signum, frame):
    raise Terminated


class Pending:
    """The signal that arrived inside ``deferred``, if one did."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def deferred() -> Iterator[Pending]:
    """Within the block, SIGINT and SIGTERM are only recorded (the block polls ``pending``
    and stops); on leaving it, the first one is raised. A second signal is raised at once:
    whoever presses Ctrl-C twice means it."""
    if threading.current_thread() is not threading.main_thread():
        yield Pending()  # signals reach only the main thread
        return
    pending = Pending()
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {kind: signal.getsignal(kind) for kind in kinds}

    def record(signum, frame):
        if pending:
            _raise(signum)
        pending.signal = signum

    for kind in kinds:
        signal.signal(kind, record)
    try:
        yield pending
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
    if pending:
        _raise(pending.signal)


def _raise(signum: int):
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
