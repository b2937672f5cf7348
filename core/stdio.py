"""Keeping native libraries' start-up noise off the terminal without hiding real errors.

TensorFlow and ONNX Runtime print from C++ straight to file descriptor 2, before (or
regardless of) their log levels, so Python's ``sys.stderr`` cannot catch it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

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
