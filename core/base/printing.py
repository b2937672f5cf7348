"""How results are written: JSON records and aligned human-readable text.

File names come from outside and may hold anything but ``/`` and NUL: a newline, a terminal
escape, bytes that are not UTF-8 (Python carries those as lone surrogates, which strict JSON
parsers reject). Text output shows them escaped, one name per line (``printable``); JSON shows
them as valid UTF-8 with replacement characters, plus the exact bytes in base64 when the two
differ (``image_fields``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Protocol

from zoo.base import jsonio
from zoo.base.progress import note


class Ranked(Protocol):
    """One of a top-K (``zoo.model.labels.Prediction``), as a record holds it."""

    def to_dict(self) -> dict: ...


def record(image: str, model: str, backend: str, top: Sequence[Ranked]) -> dict:
    """One image's result, as ``zoo predict --json`` prints it."""
    return {
        **image_fields(image),
        "model": model,
        "backend": backend,
        "top": [p.to_dict() for p in top],
    }


def error_record(image: str, reason: str) -> dict:
    return {**image_fields(image), "error": reason}


def image_fields(name: str) -> dict[str, str]:
    """``{"image": name}``, valid UTF-8; with ``image_base64``, the name's exact bytes, when
    they are not UTF-8."""
    raw = _name_bytes(name)
    text = raw.decode("utf-8", "replace")
    if text == name:
        return {"image": name}
    return {"image": text, "image_base64": base64.b64encode(raw).decode("ascii")}


def record_name(result: dict) -> str:
    """The name a record was made from, exact bytes included (``image_fields`` reversed)."""
    if "image_base64" in result:
        return base64.b64decode(result["image_base64"]).decode("utf-8", "surrogateescape")
    return result["image"]


def printable(name: str) -> str:
    """``name`` for a line of text: bytes that are not UTF-8 as ``\\xff``, control characters
    (a newline, a terminal escape) as ``\\n``, ``\\x1b``; everything else as it is."""
    text = _name_bytes(name).decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _name_bytes(name: str) -> bytes:
    """The bytes a name stands for: a file name's undecodable bytes come back as they were."""
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name decodes to
        return name.encode("utf-8", "surrogatepass")


def emit_records(
    records: Iterable[dict], jsonl: bool, as_json: bool, bar, text: bool = True, out=None
) -> tuple[int, int]:
    """Write ``zoo predict``'s records as they come, to ``out`` (default: stdout): JSON Lines,
    or ``text`` (top-K per image); with ``as_json``, one array at the end. A record's error
    goes to stderr as one line, above the progress ``bar``. Returns how many records there
    were, and how many were errors."""
    results, count, errors = [], 0, 0
    for result in records:
        count += 1
        if "error" in result:
            errors += 1
            note(f"zoo: {printable(record_name(result))}: {result['error']}")
        if jsonl:
            print(jsonio.dumps(result), file=out, flush=True)
        elif as_json:
            results.append(result)
        elif text and "top" in result:
            print_predictions(result, out)
        bar.update(1)
    bar.close()
    if as_json:
        print_json(results, out)
    return count, errors


def print_json(data, out=None) -> None:
    print(jsonio.dumps(data, indent=2), file=out)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart; each cell ``printable`` (a file
    name holding a newline stays on its row)."""
    header = [printable(cell) for cell in header]
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def print_predictions(result: dict, out=None) -> None:
    """The tutorial's ``('n01818515', 'macaw', 0.9996)`` lines, aligned, under the image name,
    to ``out`` (default: stdout)."""
    print(f"{printable(record_name(result))}  ({result['model']}, {result['backend']})", file=out)
    width = max(len(repr(p["label"])) for p in result["top"]) + 1
    for p in result["top"]:
        label = f"{p['label']!r},".ljust(width)
        print(f"  {p['rank']}. ({p['class_id']!r}, {label} {p['score']:.4f})", file=out)


def print_comparison(results: Sequence[dict], models: Sequence[str]) -> None:
    """Per image, one column per model and one row per rank: ``label score``."""
    by_image: dict[str, dict[str, dict]] = {}
    for result in results:
        if "top" in result:
            by_image.setdefault(record_name(result), {})[result["model"]] = result
    for image, per_model in by_image.items():
        columns = [m for m in models if m in per_model]
        depth = max(len(per_model[m]["top"]) for m in columns)
        rows = [
            [str(rank + 1)]
            + [
                f"{top[rank]['label']} {top[rank]['score']:.3f}" if rank < len(top) else ""
                for top in (per_model[m]["top"] for m in columns)
            ]
            for rank in range(depth)
        ]
        print(printable(image))
        print_table(["", *columns], rows)
        print()
