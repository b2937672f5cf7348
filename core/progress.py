"""Progress on stderr, for work that takes seconds or more. Silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time


def status(message: str) -> None:
    """One line saying what zoo is doing now (loading a model, building a graph...)."""
    if sys.stderr.isatty():
        print(f"zoo: {message}", file=sys.stderr, flush=True)


class Bar:
    """A one-line progress bar with a rate and an ETA; ``total`` may be unknown (None)."""

    def __init__(self, label: str, total: int | None, unit: str = "", enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self.started = time.monotonic()
        self.enabled = enabled and sys.stderr.isatty()
        self._last_draw = 0.0

    def update(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw(now - self.started)

    def _draw(self, elapsed: float) -> None:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = f"{self.label}: {_human(self.done, self.unit)}"
        if self.total:
            eta = (self.total - self.done) / rate if rate else 0.0
            line += (
                f" / {_human(self.total, self.unit)} ({self.done / self.total:.0%}, ETA {eta:.0f}s)"
            )
        print(f"\r{line}   ", end="", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A line of its own on stderr, above the bar."""
        if self.enabled:
            print("\r\x1b[K", end="", file=sys.stderr)
        print(message, file=sys.stderr, flush=True)
        if self.enabled and self.done:
            self._draw(time.monotonic() - self.started)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def _human(amount: int, unit: str) -> str:
    if unit != "B":
        return f"{amount}{unit}"
    return f"{amount / 2**20:.1f} MiB"
