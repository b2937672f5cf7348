"""Keeping native libraries' noise off the terminal without hiding real errors.

TensorFlow and ONNX Runtime print from C++ straight to file descriptor 2, before (or
regardless of) their log levels, so Python's ``sys.stderr`` cannot catch it. Ray does too, and
prints to ``sys.stdout`` from threads of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO

_COLOUR = re.compile(r"\x1b\[([0-9;]*)m")
_RESETS = ("", "0")


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[str]) -> Iterator[list[str]]:
    """Capture file descriptor 2; afterwards, pass on every line that ``noise`` does not match.

    A dropped line that starts a terminal colour it does not end (ONNX Runtime colours each
    log record, and a record's message can span lines) drops the lines after it too, through
    the one that resets the colour. Yields a list that, on exit, holds the lines dropped.
    """
    dropped: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield dropped
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            in_record = False
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if in_record or noise.search(line):
                    dropped.append(line.rstrip("\n"))
                    colours = _COLOUR.findall(line)
                    if colours:
                        in_record = colours[-1] not in _RESETS
                else:
                    sys.stderr.write(line)


@contextlib.contextmanager
def output_kept_from_libraries(show_theirs: bool) -> Iterator[TextIO]:
    """For a block that runs a library which prints as it likes (Ray: from its own threads to
    ``sys.stdout``, from C++ to file descriptor 2): yields stdout as it was, for the command's
    own output alone. Meanwhile what the library prints goes to stderr if ``show_theirs``,
    else nowhere; ``sys.stderr`` keeps the command's messages either way."""
    out = sys.stdout
    with contextlib.ExitStack() as stack:
        if show_theirs:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        else:
            nowhere = stack.enter_context(open(os.devnull, "w"))
            stack.enter_context(contextlib.redirect_stdout(nowhere))
            stack.enter_context(_native_stderr_discarded())
        yield out


@contextlib.contextmanager
def _native_stderr_discarded() -> Iterator[None]:
    """File descriptor 2 (native code's, and the processes it starts) on /dev/null for the
    block, with ``sys.stderr``, if it writes there, moved to a copy of the descriptor."""
    stream = sys.stderr
    stream.flush()
    saved = os.dup(2)
    moved = _writes_to(stream, 2)
    if moved:
        sys.stderr = open(  # noqa: SIM115 (closed on the way out)
            saved, "w", encoding=stream.encoding, errors=stream.errors, buffering=1, closefd=False
        )
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 2)
    os.close(nowhere)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        if moved:
            sys.stderr.close()
            sys.stderr = stream
        os.close(saved)


def _writes_to(stream: TextIO, descriptor: int) -> bool:
    try:
        return stream.fileno() == descriptor
    except (AttributeError, OSError, ValueError):  # pytest's capture, io.StringIO...
        return False
