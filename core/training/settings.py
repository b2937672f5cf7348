"""``TrainSettings``: how ``zoo train`` trains, as data. Its defaults are the command's and
the API's (``zoo train --help`` shows them), written here once. Light to import: the command
line declares its options from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from zoo.model.interpolation import INTERPOLATION_NAMES


@dataclass(frozen=True)
class TrainSettings:
    mode: Literal["head", "finetune"] = "head"
    """head: a classifier on the frozen base's features; finetune: then unfreeze its top."""
    epochs: int = 10
    learning_rate: float = 1e-3
    """The head's Adam learning rate."""
    batch_size: int = 32
    val_split: float = 0.2
    """Of each class, the fraction kept for validation (without a val/ folder)."""
    seed: int = 0
    augment: int = 2
    """Augmented copies (random crop, flip) of each training image, features cached too.
    Two by default: on held-out images of both shared data sets it scored best of the
    candidates measured (docs/train.md), at the price of computing three feature vectors per
    training image on the first run."""
    class_weight: Literal["balanced"] | None = None
    patience: int | None = None
    """Stop when the validation loss has not improved for this many epochs (None: never)."""
    dropout: float = 0.2
    refit: bool = True
    """head mode: once the validation images have chosen the number of epochs (the best),
    train the head again on training and validation images for that many epochs, and keep
    that head: no labelled image is left unused. The validation figures are the first head's,
    on images it did not see."""
    interpolation: str = "bilinear"
    """How the training images are resized (Keras's ``image_dataset_from_directory``'s filter);
    the model records it, and every command resizes its inputs the same way."""
    unfreeze: int | Literal["all"] = 20
    """finetune: layers of the base to unfreeze, from the top."""
    finetune_epochs: int | None = None
    """finetune: epochs after the head's (None: ``epochs``)."""
    finetune_learning_rate: float = 1e-5
    activation_cache_gb: float = 0.0
    """finetune: the most zoo's cached activations (the frozen layers' output, so that each
    epoch runs only the unfrozen ones) may take on disk, in GB; a run that needs more
    fine-tunes on the images, the whole base in every epoch. 0 (the default): never cache;
    measured slower than the images with MobileNet's top 20 layers unfrozen (docs/train.md)."""

    def __post_init__(self) -> None:
        if self.mode not in ("head", "finetune"):
            raise ValueError(f"--mode must be head or finetune, not {self.mode!r}")
        if self.interpolation not in INTERPOLATION_NAMES:
            choices = ", ".join(INTERPOLATION_NAMES)
            raise ValueError(
                f"--interpolation must be one of {choices}, not {self.interpolation!r}"
            )

    @classmethod
    def from_options(cls, options: object) -> TrainSettings:
        """The settings an ``argparse`` namespace (or any object) names, by field name."""
        return cls(**{f.name: getattr(options, f.name) for f in dataclasses.fields(cls)})


DEFAULTS = TrainSettings()


@dataclass(frozen=True)
class FinetuneSettings:
    """``--mode finetune``: how many of the base's top layers to unfreeze (or "all"), and
    how long and how fast to train them."""

    unfreeze: int | str
    epochs: int
    learning_rate: float
    copies: int
    """Versions of each training image the epochs cycle through (1 + ``augment``)."""
    cache_gb: float
    """The most all cached activations may take (``TrainSettings.activation_cache_gb``)."""
