"""The model a classifier is trained on, as data: which model, its weights, and how its
inputs are made (preprocessing, resize filter). Feature extraction, fine-tuning and the
bundle's card all read it from here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoo.model.input_config import InputConfig
from zoo.model.spec import ModelSpec


@dataclass(frozen=True)
class Base:
    spec: ModelSpec
    input: InputConfig
    """How its inputs are made (the user's options applied): for training and, through the
    card, for prediction."""
    weights: str | os.PathLike
    """As asked for ("imagenet", "none", a path): what the bundle's card records."""
    weights_path: Path | None
    """The file it resolved to; None: seeded random init."""
