"""``zoo predict --engine ray``: the command-line side of ``zoo.distributed``.

``add_engine_options`` adds the engine's options to ``zoo predict``'s parser;
``run_distributed_predict`` runs the command on Ray and prints what ``--engine local`` would
(the same records, as JSON Lines, JSON or text), or writes them to ``--output DIR``.
"""

from __future__ import annotations

import argparse
import sys

from .cli_options import input_overrides, number_between, positive_int
from .errors import ZooError
from .output import emit_records
from .progress import progress_bar

EXIT_ERROR = 1
RAY_ONLY = ("address", "actors", "gpus_per_actor", "output", "preserve_order")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group(
        "engine",
        "--engine ray classifies on a Ray cluster (pip install 'zoo[ray]'): a .onnx file, or "
        "a registered model with --backend onnx; --threads is then per actor (default 1)",
    )
    engine.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default): this process; ray: a pool of Ray actors",
    )
    engine.add_argument(
        "--address",
        default=None,
        help="the Ray cluster (default: $RAY_ADDRESS, else a Ray started for this command)",
    )
    engine.add_argument(
        "--actors",
        type=positive_int,
        default=None,
        help="actors in the pool (default: as many as the cluster's CPUs or GPUs allow)",
    )
    engine.add_argument(
        "--gpus-per-actor",
        type=number_between(0),
        default=None,
        metavar="G",
        help="GPUs each actor holds (default 0: CPU actors); above 0, ONNX Runtime runs on CUDA",
    )
    engine.add_argument(
        "--output",
        metavar="DIR",
        default=None,
        help="write the records to DIR/predictions.jsonl instead of printing them",
    )
    engine.add_argument(
        "--preserve-order",
        action="store_true",
        default=None,
        help="records in input order (default: as they come)",
    )


def refuse_ray_options(args) -> None:
    """``--engine local`` with an option only the Ray engine has: say so, not ignore it."""
    given = [name for name in RAY_ONLY if getattr(args, name, None) is not None]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ZooError(f"{options}: only with --engine ray")


def run_distributed_predict(args) -> int:
    from .distributed import predict

    if not args.model.endswith(".onnx") and args.backend != "onnx":
        raise ZooError(
            f"--engine ray runs ONNX models: give a .onnx file, or {args.model} --backend onnx"
        )
    if args.output and (args.jsonl or args.json):
        raise ZooError("--output writes the records to a folder: leave out --json and --jsonl")
    records = predict(
        args.model,
        args.images,
        address=args.address,
        actors=args.actors,
        threads=args.threads or 1,
        gpus=args.gpus_per_actor or 0,
        batch_size=args.batch_size,
        top=args.top,
        output=args.output,
        preserve_order=bool(args.preserve_order),
        weights=args.weights,
        provider=args.provider,
        overrides=input_overrides(args),
        fast_decode=args.fast_decode,
    )
    bar = progress_bar(
        args.model, None, "image", enabled=bool(args.output or args.json) or not sys.stdout.isatty()
    )
    count, errors = emit_records(records, args.jsonl, args.json, bar, text=not args.output)
    if args.output:
        print(f"wrote {count} records ({errors} errors) to {args.output}/predictions.jsonl")
    return EXIT_ERROR if errors else 0
