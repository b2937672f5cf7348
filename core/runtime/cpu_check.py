"""One line when an int8 file runs on another CPU class than the one it was verified on.

int8 results depend on the CPU's integer kernels (``zoo.base.hardware``): a file whose agreement
with Keras was measured on a VNNI server may compute other numbers on an AVX2-only one. The
file's card says where it was verified; ``zoo verify`` measures it again here.
"""

from __future__ import annotations

import os
import sys

from zoo.base import hardware
from zoo.model.card import ModelCard
from zoo.sources.weights import WeightsSource

_warned: set[str] = set()


def warn_if_verified_elsewhere(card: ModelCard, path: str | os.PathLike) -> None:
    """Print the warning for ``path`` once per process, if it applies."""
    message = verified_elsewhere(card, path)
    key = os.path.abspath(path)
    if message and key not in _warned:
        _warned.add(key)
        print(f"zoo: warning: {message}", file=sys.stderr)


def acknowledge(path: str | os.PathLike) -> None:
    """No warning for ``path`` in this process: the caller is re-verifying it here."""
    _warned.add(os.path.abspath(path))


def verified_elsewhere(card: ModelCard, path: str | os.PathLike) -> str | None:
    """Why an int8 ``card`` should be verified again on this CPU, or None."""
    if not card.precision.startswith("int8") or card.verified_on is None:
        return None
    here, there = hardware.cpu_class(), card.verified_on.cpu_class
    if here == there:
        return None
    risk = (
        "whose int8 kernels saturate where VNNI ones do not"
        if here in hardware.SATURATING_CLASSES and there not in hardware.SATURATING_CLASSES
        else "whose int8 kernels differ"
    )
    from_file = WeightsSource.parse(card.weights).file is not None
    weights = f" --weights {card.weights}" if from_file else ""
    return (
        f"{path} ({card.precision}) was verified on an {there} CPU and runs on {here}, {risk}: "
        f"run 'zoo verify {card.model} {path}{weights}' here"
    )


def reverified_line(card: ModelCard, passed: bool) -> str | None:
    """For ``zoo verify`` of an int8 file on another CPU class than its export's: whether its
    agreement still passes here."""
    if not card.precision.startswith("int8") or card.verified_on is None:
        return None
    here, there = hardware.cpu_class(), card.verified_on.cpu_class
    if here == there:
        return None
    verdict = "still passes" if passed else "no longer passes"
    return f"measured again on this {here} CPU (exported and verified on {there}): {verdict} here"
