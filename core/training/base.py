"""The model a classifier is trained on, as data: which model, its weights, and how its
inputs are made (preprocessing, resize filter). Feature extraction, fine-tuning and the
bundle's card all read it from here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..specs import ModelSpec, PreprocessSpec


@dataclass(frozen=True)
class Base:
    spec: ModelSpec
    preprocessing: PreprocessSpec
    weights: str | os.PathLike
    """As asked for ("imagenet", "none", a path): what the bundle's card records."""
    weights_path: Path | None
    """The file it resolved to; None: seeded random init."""
    interpolation: str
    """The resize filter, for training and, through the card, for prediction."""


@dataclass(frozen=True)
class FinetuneSettings:
    """``--mode finetune``: how many of the base's top layers to unfreeze (or "all"), and
    how long and how fast to train them."""

    unfreeze: int | str
    epochs: int
    learning_rate: float
