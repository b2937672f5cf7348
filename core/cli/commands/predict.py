"""``zoo predict``: classify files, folders and globs with one model, decoding in threads; with
``--engine ray``, on a pool of Ray actors (``zoo.distributed``, imported only then)."""

from __future__ import annotations

import dataclasses
import sys

from zoo.base.errors import ZooError
from zoo.base.exit_codes import EXIT_ERROR
from zoo.base.printing import emit_records
from zoo.base.progress import progress_bar
from zoo.cli.options import (
    MODEL_HELP,
    RAY_OPTIONS,
    add_decode_threads,
    add_deprecated,
    add_engine_options,
    add_input_options,
    add_json,
    add_keras_file_options,
    add_model_options,
    add_precision,
    add_top,
    input_overrides,
    option_groups,
    positive_int,
    ray_options,
    refuse_ray_options,
)
from zoo.model.input_config import resolve
from zoo.plugin.registry import get_registry

RAY_ONLY = (*RAY_OPTIONS, "output", "preserve_order")
"""predict's Ray engine options: each defaults to None, so that ``--engine local`` can refuse
them."""


def add_command(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify images with one model",
        description="Classify image files, folders (searched recursively) or glob patterns. "
        "Files are decoded in threads while the model runs; a file that cannot be read is "
        "reported and skipped, and the exit status is then 1.",
    )
    predict.add_argument("model", help=MODEL_HELP)
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns"
    )
    inputs, model = option_groups(predict, "input", "model")
    add_input_options(inputs)
    add_deprecated(inputs, "--workers", add_decode_threads(inputs))
    inputs.add_argument(
        "--fast-decode",
        action="store_true",
        help="decode JPEGs at reduced scale (Pillow's draft mode): faster on large photos, "
        "pixels differ slightly from Keras's",
    )
    add_model_options(model)
    add_precision(model)
    model.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per backend run (32)"
    )
    add_keras_file_options(predict, "model")
    [output] = option_groups(predict, "output")
    add_top(output)
    add_json(output)
    output.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per image as results come"
    )
    add_predict_engine_options(predict)
    predict.set_defaults(run=run)


def add_predict_engine_options(predict) -> None:
    engine = add_engine_options(predict, "classifies")
    engine.add_argument(
        "-o",
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


def run(args) -> int:
    if args.engine == "ray":
        return run_on_ray(args)
    refuse_ray_options(args, RAY_ONLY)
    from zoo.runtime.api import load
    from zoo.runtime.pipeline import batch_records, decoded_batches, expand_inputs
    from zoo.sources.resolver import is_onnx_file

    files = expand_inputs(args.images)
    if is_onnx_file(args.model):  # a file carries all it needs; loading it is cheap
        model = load(
            args.model,
            args.backend,
            provider=args.provider,
            threads=args.threads,
            precision=args.precision,
        )
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
            files, config, args.batch_size, args.decode_threads, args.fast_decode
        )
        for batch in batches:
            if model is None and any(item.error is None for item in batch):
                model = load(
                    name,
                    args.backend,
                    args.weights,
                    args.provider,
                    args.threads,
                    precision=args.precision,
                )
            yield from batch_records(model, batch, args.top)

    bar = progress_bar(name, len(files), "image", enabled=args.json or not sys.stdout.isatty())
    _, errors = emit_records(records(), args.jsonl, args.json, bar)
    return EXIT_ERROR if errors else 0


def run_on_ray(args) -> int:
    """The same records as ``--engine local`` (as JSON Lines, JSON or text), or written to
    ``--output DIR``. Ray prints from its own threads and native code: what it prints is kept
    off stdout, and off stderr too unless ``--debug``."""
    from zoo.base.stdio import output_kept_from_libraries
    from zoo.distributed import predict

    if args.output and (args.jsonl or args.json):
        raise ZooError("--output writes the records to a folder: leave out --json and --jsonl")
    with output_kept_from_libraries(show_theirs=args.debug) as out:
        records = predict(
            args.model,
            args.images,
            **dataclasses.asdict(ray_options(args)),
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
            args.model, None, "image", enabled=bool(args.output or args.json) or not out.isatty()
        )
        count, errors = emit_records(
            records, args.jsonl, args.json, bar, text=not args.output, out=out
        )
        if args.output:
            written = f"{args.output}/predictions.jsonl"
            print(f"wrote {count} records ({errors} errors) to {written}", file=out)
    return EXIT_ERROR if errors else 0
