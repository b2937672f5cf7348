"""Every JSON document zoo writes or prints goes through ``dumps``: strict JSON.

Python's ``json`` writes NaN and infinity as the bare words ``NaN`` and ``Infinity``, which
are not JSON: strict parsers (JavaScript's, Go's, ``jq``) reject the whole document. zoo
refuses non-finite numbers where they arise (a model's scores, a training loss, an export's
differences); should one still reach a document, ``dumps`` raises ``ValueError`` rather than
write something no other program can read. (The server's answers are Starlette's
``JSONResponse``, strict in the same way.)
"""

from __future__ import annotations

import json
from typing import Any


def dumps(data: Any, **options: Any) -> str:
    """``json.dumps`` that refuses NaN and infinity; ``options`` as for ``json.dumps``."""
    return json.dumps(data, allow_nan=False, **options)


def dumps_for_keras(config: Any) -> str:
    """A Keras config zoo rewrote, for Keras to read back: in Python's own encoding, as Keras
    writes and reads it (a config may hold NaN or Infinity, which Keras's own files carry).
    Never for what zoo prints, writes as its records, or serves."""
    return json.dumps(config)


def flatten(nested: list) -> list:
    """The leaves of nested JSON arrays, in order (row-major, as the Open Inference Protocol
    lays out a tensor's ``data``); iterative, so that arrays nested 100,000 deep cost no
    recursion."""
    flat, stack = [], [iter(nested)]
    while stack:
        for element in stack[-1]:
            if isinstance(element, list):
                stack.append(iter(element))
                break
            flat.append(element)
        else:
            stack.pop()
    return flat
