"""Integrity records of the cards zoo writes: the sha256 of everything in a card that changes
a model's answer (labels and their order, preprocessing, size, output kind, custom code...),
and one sha256 per field, so that a card edited by hand is refused naming what was changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from zoo.base import jsonio


def digest(value) -> str:
    """The sha256 of ``value``'s strict JSON, keys sorted."""
    return hashlib.sha256(jsonio.dumps(value, sort_keys=True).encode()).hexdigest()


def record(whole, fields: Mapping[str, object]) -> dict:
    """What a card carries: the digest of ``whole`` and of each of ``fields``."""
    return {"sha256": digest(whole), "fields": {name: digest(v) for name, v in fields.items()}}


def changed_fields(whole, fields: Mapping[str, object], recorded) -> list[str] | None:
    """None when ``recorded`` (a card's integrity record) still matches ``whole``; else the
    fields whose digest differs (empty when it cannot tell which)."""
    if isinstance(recorded, dict) and recorded.get("sha256") == digest(whole):
        return None
    digests = recorded.get("fields") if isinstance(recorded, dict) else None
    digests = digests if isinstance(digests, dict) else {}
    return [name for name, value in fields.items() if digests.get(name) != digest(value)]
