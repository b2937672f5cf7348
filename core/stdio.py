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


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[str]) -> Iterator[list[str]]:
    """Capture file descriptor 2; afterwards, pass on every line that ``noise`` does not match.

    Yields a list that, on exit, holds the lines that were dropped.
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
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if noise.search(line):
                    dropped.append(line.rstrip("\n"))
                else:
                    sys.stderr.write(line)
