"""``zoo predict``: classify files, folders and globs with one model, decoding in threads."""

from __future__ import annotations

import json
import sys

from zoo.cli_options import add_model_options, positive_int
from zoo.output import error_record, print_json, print_predictions, record
from zoo.progress import note, progress_bar
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
    predict.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from zoo.api import load
    from zoo.pipeline import decoded_batches, expand_inputs

    files = expand_inputs(args.images)
    if args.model.endswith(".onnx"):  # a file carries all it needs; loading it is cheap
        model = load(args.model, provider=args.provider, threads=args.threads)
        name, backend, input_size = model.name, model.backend, model.input_size
    else:  # loaded once there is an image to classify: a bad file alone is reported quickly
        spec = get_registry().model(args.model)
        model, name, backend, input_size = None, spec.name, args.backend, spec.input_size
    bar = progress_bar(name, len(files), "image", enabled=args.json or not sys.stdout.isatty())
    results: list[dict] = []
    errors = 0
    batches = decoded_batches(
        files, input_size, args.batch_size, args.interpolation, args.workers, args.fast_decode
    )
    for batch in batches:
        good = [item for item in batch if item.error is None]
        if good:
            model = model or load(name, backend, args.weights, args.provider, args.threads)
            probabilities = model.probabilities(np.stack([item.pixels for item in good]))
            tops = iter(model.top(probabilities, args.top))
        for item in batch:
            if item.error is not None:
                errors += 1
                note(f"zoo: {item.error}")
                result = error_record(item.path, item.error.reason)
            else:
                result = record(item.path, name, backend, next(tops))
            if args.jsonl:
                print(json.dumps(result), flush=True)
            elif args.json:
                results.append(result)
            elif "top" in result:
                print_predictions(result)
        bar.update(len(batch))
    bar.close()
    if args.json:
        print_json(results)
    return EXIT_ERROR if errors else 0
