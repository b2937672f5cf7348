"""Progress on stderr, for work that takes seconds or more. Silent when stderr is not a terminal.

Bars are ``tqdm``'s (terminal width, notebooks, nested bars for training epochs), imported
when a bar is made so that light commands never load it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm


def status(message: str) -> None:
    """One line saying what zoo is doing now (loading a model, building a graph...)."""
    if sys.stderr.isatty():
        print(f"zoo: {message}", file=sys.stderr, flush=True)


def progress_bar(label: str, total: int | None, unit: str = "it", enabled: bool = True) -> tqdm:
    """A bar with a rate and an ETA (``total`` may be unknown: None); ``unit="B"`` counts bytes
    in KiB, MiB... Drawn only when ``enabled`` and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=label,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not (enabled and sys.stderr.isatty()),
    )


def note(message: str) -> None:
    """A line of its own on stderr, above any bar being drawn."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
