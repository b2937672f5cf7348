"""``zoo predict``: classify files, folders and globs with one model, decoding in threads."""

from __future__ import annotations

import sys

from zoo.cli_options import add_model_options, input_overrides, positive_int
from zoo.distributed_cli import add_engine_options, refuse_ray_options, run_distributed_predict
from zoo.input_config import resolve
from zoo.output import emit_records
from zoo.progress import progress_bar
from zoo.registry import get_registry

EXIT_ERROR = 1


def add_command(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify images with one model",
        description="Classify image files, folders (searched recursively) or glob patterns. "
        "Files are decoded in threads while the model runs; a file that cannot be read is "
        "reported and skipped, and the exit status is then 1.",
    )
    predict.add_argument("model", help="model name or alias (see 'zoo list'), or a .onnx file")
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns"
    )
    add_model_options(predict)
    predict.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per image as results come"
    )
    predict.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per backend run (32)"
    )
    predict.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="image decoding threads (default: one per CPU core)",
    )
    predict.add_argument(
        "--fast-decode",
        action="store_true",
        help="decode JPEGs at reduced scale (Pillow's draft mode): faster on large photos, "
        "pixels differ slightly from Keras's",
    )
    add_engine_options(predict)
    predict.set_defaults(run=run)


def run(args) -> int:
    if args.engine == "ray":
        return run_distributed_predict(args)
    refuse_ray_options(args)
    from zoo.api import load
    from zoo.pipeline import batch_records, decoded_batches, expand_inputs

    files = expand_inputs(args.images)
    if args.model.endswith(".onnx"):  # a file carries all it needs; loading it is cheap
        model = load(args.model, provider=args.provider, threads=args.threads)
        name, config = model.name, model.input
    else:  # loaded once there is an image to classify: a bad file alone is reported quickly
        registry = get_registry()
        spec = registry.model(args.model)
        model = None
        name, config = spec.name, registry.input_config(spec)
    config = resolve(config, input_overrides(args))

    def records():
        nonlocal model
        batches = decoded_batches(
            files,
            config.size,
            args.batch_size,
            config.interpolation,
            args.workers,
            args.fast_decode,
        )
        for batch in batches:
            if model is None and any(item.error is None for item in batch):
                model = load(name, args.backend, args.weights, args.provider, args.threads)
            yield from batch_records(model, batch, args.top)

    bar = progress_bar(name, len(files), "image", enabled=args.json or not sys.stdout.isatty())
    _, errors = emit_records(records(), args.jsonl, args.json, bar)
    return EXIT_ERROR if errors else 0
