"""How results are written: JSON records and aligned human-readable text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .labels import Prediction


def record(image: str, model: str, backend: str, top: Sequence[Prediction]) -> dict:
    """One image's result, as ``zoo predict --json`` prints it."""
    return {"image": image, "model": model, "backend": backend, "top": [p.to_dict() for p in top]}


def error_record(image: str, reason: str) -> dict:
    return {"image": image, "error": reason}


def print_json(data) -> None:
    print(json.dumps(data, indent=2))


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def print_predictions(result: dict) -> None:
    """The tutorial's ``('n01818515', 'macaw', 0.9996)`` lines, aligned, under the image name."""
    print(f"{result['image']}  ({result['model']}, {result['backend']})")
    width = max(len(repr(p["label"])) for p in result["top"]) + 1
    for p in result["top"]:
        label = f"{p['label']!r},".ljust(width)
        print(f"  {p['rank']}. ({p['class_id']!r}, {label} {p['score']:.4f})")


def print_comparison(results: Sequence[dict], models: Sequence[str]) -> None:
    """Per image, one column per model and one row per rank: ``label score``."""
    by_image: dict[str, dict[str, dict]] = {}
    for result in results:
        if "top" in result:
            by_image.setdefault(result["image"], {})[result["model"]] = result
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
        print(image)
        print_table(["", *columns], rows)
        print()
