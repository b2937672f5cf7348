"""``zoo train``: a classifier of your own classes on a registered model (the work is in
``zoo.training``, imported when the command runs)."""

from __future__ import annotations

import argparse

from zoo.cli.options import (
    add_engine_options,
    add_json,
    add_keras_file_options,
    add_provider,
    add_threads,
    add_weights,
    integer_at_least,
    number_between,
    option_groups,
    positive_int,
    print_report,
    ray_options,
)
from zoo.model.interpolation import INTERPOLATION_NAMES
from zoo.training.settings import DEFAULTS, TrainSettings


def _unfreeze(text: str) -> int | str:
    return "all" if text == "all" else integer_at_least(1)(text)


def add_command(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a classifier of your own classes on a registered model",
        description="Train a classifier of DATA's classes on BASE: DATA has one sub-folder of "
        "images per class, or train/ and val/ (and test/) sub-folders laid out that way. The "
        "base's pooled features are computed once per image and cached; a head (dropout, dense "
        "softmax) is trained on them. The result is a model like any other: zoo list shows it. "
        f"The defaults, chosen by measurement on held-out images (docs/train.md): "
        f"--interpolation {DEFAULTS.interpolation}, --augment {DEFAULTS.augment}, "
        f"--{'' if DEFAULTS.refit else 'no-'}refit, --val-split {DEFAULTS.val_split:g}, "
        f"--epochs {DEFAULTS.epochs}.",
    )
    train.add_argument("base", help="the model to build on (see 'zoo list')")
    train.add_argument("data", help="folder of labelled images")
    inputs, model = option_groups(train, "input", "model")
    inputs.add_argument(
        "--val-split",
        type=number_between(0, 1, low_inclusive=False),
        default=DEFAULTS.val_split,
        help=f"fraction of each class kept for validation, without val/ ({DEFAULTS.val_split})",
    )
    inputs.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help=f"same data + same seed = same model ({DEFAULTS.seed})",
    )
    inputs.add_argument(
        "--augment",
        type=integer_at_least(0),
        default=DEFAULTS.augment,
        metavar="K",
        help=f"K augmented copies (random crop, flip) of each training image ({DEFAULTS.augment})",
    )
    inputs.add_argument(
        "--interpolation",
        choices=INTERPOLATION_NAMES,
        default=DEFAULTS.interpolation,
        help="resize filter for the training images, recorded in the model: every command "
        f"resizes its inputs so ({DEFAULTS.interpolation}, as Keras's data loader)",
    )
    add_weights(model)
    add_provider(model)
    add_threads(model)
    add_keras_file_options(train, "base")
    training, output = option_groups(train, "training", "output")
    training.add_argument(
        "--mode",
        choices=["head", "finetune"],
        default=DEFAULTS.mode,
        help=f"head: frozen base; finetune: then unfreeze the top layers ({DEFAULTS.mode})",
    )
    training.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULTS.epochs,
        help=f"head epochs ({DEFAULTS.epochs})",
    )
    training.add_argument(
        "--learning-rate",
        type=number_between(0, low_inclusive=False),
        default=DEFAULTS.learning_rate,
        help=f"head's Adam rate ({DEFAULTS.learning_rate:g})",
    )
    training.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULTS.batch_size,
        help=f"batch size ({DEFAULTS.batch_size})",
    )
    training.add_argument(
        "--dropout",
        type=number_between(0, 1),
        default=DEFAULTS.dropout,
        help=f"head's dropout rate ({DEFAULTS.dropout})",
    )
    training.add_argument(
        "--class-weight",
        choices=["balanced"],
        default=DEFAULTS.class_weight,
        help="balanced: weigh classes inversely to their training images",
    )
    training.add_argument(
        "--patience",
        type=positive_int,
        default=DEFAULTS.patience,
        metavar="EPOCHS",
        help="stop when the validation loss has not improved for this many "
        "epochs (default: run every epoch); the best epoch is kept either way",
    )
    training.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.refit,
        help="head mode: after the validation images have chosen the epochs, train the head "
        "again on training and validation images for that many (default: on)",
    )
    training.add_argument(
        "--unfreeze",
        type=_unfreeze,
        default=DEFAULTS.unfreeze,
        metavar="N|all",
        help=f"finetune: layers of the base to unfreeze, from the top ({DEFAULTS.unfreeze})",
    )
    training.add_argument(
        "--finetune-epochs",
        type=positive_int,
        default=DEFAULTS.finetune_epochs,
        metavar="N",
        help="finetune: epochs after the head's (default: --epochs)",
    )
    training.add_argument(
        "--finetune-learning-rate",
        type=number_between(0, low_inclusive=False),
        default=DEFAULTS.finetune_learning_rate,
        metavar="RATE",
        help=f"finetune: Adam learning rate ({DEFAULTS.finetune_learning_rate:g})",
    )
    training.add_argument(
        "--activation-cache-gb",
        type=number_between(0),
        default=DEFAULTS.activation_cache_gb,
        metavar="GB",
        help="finetune: cache the frozen layers' output, up to GB on disk, so that each epoch "
        "runs only the unfrozen ones; a run that needs more fine-tunes on the images "
        f"({DEFAULTS.activation_cache_gb:g}: never cache, as measured faster with --unfreeze 20)",
    )
    output.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="NAME|DIR",
        help="the new model's name (saved in zoo's home), or a folder path to save it at",
    )
    output.add_argument(
        "--plot", metavar="OUT.png", help="write the learning curves and the confusion matrix here"
    )
    add_json(output, "print the report as JSON")
    add_engine_options(train, "computes the features not cached yet (the head trains here)")
    train.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from zoo.training import train
    from zoo.training.summary import print_train_report

    engine = ray_options(args)
    return print_report(
        args,
        lambda: train(
            args.base,
            args.data,
            args.output,
            TrainSettings.from_options(args),
            weights=args.weights,
            provider=args.provider,
            threads=args.threads if engine is None else 0,
            engine=engine,
        ),
        print_train_report,
    )
