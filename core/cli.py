"""The ``zoo`` command. Errors a user can cause end as one ``zoo: ...`` line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from . import __version__
from .cli_options import add_model_options, add_threads, comma_list, positive_int
from .errors import ImageError, ZooError, describe_exception
from .images import open_image
from .output import (
    error_record,
    print_comparison,
    print_json,
    print_predictions,
    print_table,
    record,
)
from .plugin_manager import hooks_implemented, load_plugins, pm
from .progress import Bar, status
from .registry import PluginWarning, get_registry
from .samples import image_files
from .weights import WEIGHTS_HELP

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # plugin problems as one "zoo: warning:" line
        parser = build_parser()
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 0
        return _run(args, debug=args.debug or bool(os.environ.get("ZOO_DEBUG")))


def _run(args, debug: bool) -> int:
    """The command, with a user's errors as one line and SIGTERM unwinding like Ctrl-C (so
    that half-written files are removed on the way out)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.run(args) or 0
    except ZooError as error:
        if debug:
            raise
        print(f"zoo: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if debug:
            raise
        print(
            f"zoo: unexpected error: {describe_exception(error)} "
            "(run with --debug or ZOO_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_ERROR


def _interrupt(signum, frame):
    raise KeyboardInterrupt


_default_showwarning = warnings.showwarning


def _show_warning(message, category, *args, **kwargs):
    if issubclass(category, PluginWarning):
        print(f"zoo: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Keras ImageNet classifiers on Keras or ONNX Runtime, extensible with plugins.",
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    list_ = commands.add_parser("list", help="list the registered models")
    list_.add_argument("--json", action="store_true", help="print JSON")
    list_.set_defaults(run=run_list)

    plugins = commands.add_parser("plugins", help="list the installed plugins and their hooks")
    plugins.add_argument("--all", action="store_true", help="include zoo's built-in plugins")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(run=run_plugins)

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
    predict.set_defaults(run=run_predict)

    export = commands.add_parser("export", help="export a model (ONNX), verified against Keras")
    export.add_argument("model", help="model name or alias (see 'zoo list')")
    export.add_argument(
        "--onnx", dest="format", action="store_const", const="onnx", help="export to ONNX"
    )
    export.add_argument("--format", help="exporter name (default: onnx)")
    export.add_argument("-o", "--output", help="where to write it (default: ./MODEL.onnx)")
    export.add_argument("--weights", default="imagenet", help=WEIGHTS_HELP)
    export.add_argument(
        "--opset", type=positive_int, default=None, help="ONNX opset (default: the exporter's)"
    )
    export.add_argument(
        "--batch",
        type=_batch_size,
        default=None,
        metavar="dynamic|N",
        help="batch dimension: dynamic (default) or a fixed size",
    )
    export.add_argument("--images", metavar="DIR", help="also verify on the photos in this folder")
    export.add_argument(
        "--precision",
        default="fp32",
        metavar="fp32|fp16|int8",
        help="fp32 (default, verified exact); int8 (static quantization, for CPUs) or fp16 "
        "(for GPUs), with their agreement with Keras measured and reported",
    )
    export.add_argument(
        "--quantize",
        dest="precision",
        choices=["int8"],
        help="the same as --precision int8",
    )
    export.add_argument(
        "--calibration",
        metavar="DIR",
        help="photos to calibrate int8 on (default: zoo's sample photos); a few hundred "
        "like those the model will see work best",
    )
    export.add_argument("--no-verify", action="store_true", help="skip the verification")
    export.add_argument(
        "--embed-preprocessing",
        action="store_true",
        help="take raw uint8 RGB pixels and preprocess inside the graph",
    )
    export.add_argument(
        "--top-k",
        type=positive_int,
        metavar="K",
        help="add top_k_scores and top_k_indices outputs (the K best classes)",
    )
    export.add_argument(
        "--triton",
        metavar="DIR",
        type=Path,
        help="write a Triton model repository entry DIR/MODEL instead of -o",
    )
    export.add_argument("--json", action="store_true", help="print JSON")
    export.set_defaults(run=run_export, format="onnx")

    bench = commands.add_parser("bench", help="inference latency and throughput per backend")
    bench.add_argument("model", help="model name or alias (see 'zoo list'), or a .onnx file")
    bench.add_argument(
        "--backend",
        type=comma_list,
        default=["keras", "onnx"],
        help="comma-separated backends (default: keras,onnx)",
    )
    bench.add_argument(
        "--batch",
        type=lambda text: [positive_int(part) for part in comma_list(text)],
        default=[1, 32],
        help="comma-separated batch sizes (default: 1,32)",
    )
    bench.add_argument("--weights", default="imagenet", help=WEIGHTS_HELP)
    bench.add_argument(
        "--runs", type=positive_int, default=20, help="timed runs per batch size, at least (20)"
    )
    bench.add_argument(
        "--provider", default="auto", help="execution provider for the onnx backend (auto)"
    )
    add_threads(bench)
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(run=run_bench)

    check = commands.add_parser(
        "check-plugin", help="conformance check for a plugin's models (for plugin authors)"
    )
    check.add_argument("plugin", help="the plugin's entry point or distribution name")
    check.add_argument(
        "--weights", default="none", help="weights for every model (default: none, offline)"
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(run=run_check_plugin)

    compare = commands.add_parser(
        "compare", help="classify images with several models, side by side"
    )
    compare.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    compare.add_argument(
        "--models", type=comma_list, help="comma-separated model names (default: every model)"
    )
    add_model_options(compare)
    compare.add_argument("--plot", metavar="OUT.png", help="also draw a PNG grid of top-K bars")
    compare.set_defaults(run=run_compare)

    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(commands)
        except Exception as error:
            warnings.warn(
                f"plugin {impl.plugin_name!r} failed in register_commands: "
                f"{describe_exception(error)}",
                PluginWarning,
                stacklevel=1,
            )
    return parser


def _batch_size(text: str) -> int | None:
    return None if text == "dynamic" else positive_int(text)


def run_list(args) -> int:
    registry = get_registry()
    rows = [
        {
            "name": spec.name,
            "aliases": list(spec.aliases),
            "input_size": list(spec.input_size),
            "preprocess": registry.preprocessor(spec).name,
            "plugin": registry.owners[("model", spec.name)],
            "description": spec.description,
        }
        for spec in registry.models.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["MODEL", "ALIASES", "INPUT", "PREPROCESS", "PLUGIN"],
        [
            [
                row["name"],
                ", ".join(row["aliases"]),
                "x".join(map(str, row["input_size"])),
                row["preprocess"],
                row["plugin"],
            ]
            for row in rows
        ],
    )
    return 0


def run_plugins(args) -> int:
    registry = get_registry()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": hooks_implemented(info.name),
            **registry.contributions(info.name),
            "error": info.error,
        }
        for info in load_plugins().values()
        if args.all or not info.builtin
    ]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no plugins installed ('zoo plugins --all' lists the built-in ones too)")
    else:
        print_table(
            ["PLUGIN", "VERSION", "HOOKS", "PROVIDES"],
            [[row["name"], row["version"], *_plugin_summary(row)] for row in rows],
        )
    return 0


def _plugin_summary(row: dict) -> list[str]:
    if row["error"]:
        return [f"FAILED: {row['error']}", ""]
    kinds = ("models", "preprocessors", "backends", "exporters")
    provides = "; ".join(f"{kind}: {', '.join(row[kind])}" for kind in kinds if row[kind])
    return [", ".join(row["hooks"]), provides]


def run_bench(args) -> int:
    from .api import load
    from .bench import bench, machine

    backends = ["onnx"] if args.model.endswith(".onnx") else args.backend
    results = []
    for backend in backends:
        status(f"loading {args.model} on {backend}")
        provider = args.provider if backend == "onnx" else "auto"  # --provider is ORT's
        model = load(args.model, backend, args.weights, provider, args.threads)
        results += bench(model, args.batch, runs=args.runs, progress=status)
        del model
    report = {"machine": machine(), "results": [r.to_dict() for r in results]}
    if args.json:
        print_json(report)
        return 0
    info = report["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in info["libraries"].items())
    print(f"{info['cpu']} ({info['cores']} cores); {versions}")
    for backend, device in dict.fromkeys((r.backend, r.device) for r in results):
        print(f"{backend}: {device}")
    keras = {r.batch: r.p50_ms for r in results if r.backend == "keras"}
    print_table(
        ["MODEL", "BACKEND", "PRECISION", "BATCH", "P50 MS", "P95 MS", "IMAGES/S", "VS KERAS"],
        [
            [
                r.model,
                r.backend,
                r.precision,
                str(r.batch),
                f"{r.p50_ms:.1f}",
                f"{r.p95_ms:.1f}",
                f"{r.images_per_s:.1f}",
                f"{keras[r.batch] / r.p50_ms:.2f}x" if r.batch in keras else "",
            ]
            for r in results
        ],
    )
    return 0


def run_check_plugin(args) -> int:
    from .testing import check_plugin

    report = check_plugin(args.plugin, weights=args.weights)
    if args.json:
        print_json(report.to_dict())
    else:
        print_table(
            ["MODEL", "CHECK", "RESULT", "DETAIL"],
            [[c.model, c.step, "ok" if c.ok else "FAILED", c.detail] for c in report.checks],
        )
    if not report.passed:
        failed = next((c for c in report.checks if not c.ok), None)
        reason = f"{failed.model}: {failed.step}: {failed.detail}" if failed else "no checks ran"
        print(
            f"zoo: plugin {report.plugin!r} fails the conformance check ({reason})", file=sys.stderr
        )
        return EXIT_ERROR
    return 0


def _decoded(paths: Sequence[str]) -> Iterator[tuple[str, Image.Image | ImageError]]:
    """Each path with its decoded RGB image, or with the error that stopped it (reported here)."""
    for path in paths:
        try:
            yield path, open_image(path)
        except ImageError as error:
            print(f"zoo: {error}", file=sys.stderr)
            yield path, error


def run_predict(args) -> int:
    from .api import load
    from .pipeline import decoded_batches, expand_inputs

    files = expand_inputs(args.images)
    if args.model.endswith(".onnx"):  # a file carries all it needs; loading it is cheap
        model = load(args.model, provider=args.provider, threads=args.threads)
        name, backend, input_size = model.name, model.backend, model.input_size
    else:  # loaded once there is an image to classify: a bad file alone is reported quickly
        spec = get_registry().model(args.model)
        model, name, backend, input_size = None, spec.name, args.backend, spec.input_size
    bar = Bar(name, len(files), " images", enabled=args.json or not sys.stdout.isatty())
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
                bar.note(f"zoo: {item.error}")
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


def run_export(args) -> int:
    registry = get_registry()
    spec = registry.model(args.model)
    exporter = registry.exporter(args.format)
    if args.triton and args.output:
        raise ZooError("give -o or --triton, not both: --triton DIR decides where the model goes")
    output = Path(args.output or f"{spec.name}.{args.format}")
    result = exporter.export(
        spec,
        output,
        weights=args.weights,
        opset=args.opset,
        batch=args.batch,
        images=image_files(Path(args.images)) if args.images else [],
        verify_output=not args.no_verify,
        embed_preprocessing=args.embed_preprocessing,
        top_k=args.top_k,
        triton=args.triton,
        precision=args.precision,
        calibration=image_files(Path(args.calibration)) if args.calibration else [],
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0


def run_compare(args) -> int:
    from .compare import compare, parse_weights

    registry = get_registry()
    names = args.models or list(registry.models)
    specs = [registry.model(name) for name in names]
    weights = parse_weights(args.weights, [spec.name for spec in specs])
    if args.plot:
        from .plot import check_writable

        check_writable(args.plot)
    decoded = list(_decoded(args.images))
    images = [(path, image) for path, image in decoded if not isinstance(image, ImageError)]
    per_image, failures = (
        compare(
            images,
            specs,
            args.backend,
            weights,
            args.top,
            args.interpolation,
            args.provider,
            args.threads,
        )
        if images
        else ([], [])
    )
    for failure in failures:
        print(f"zoo: {failure}", file=sys.stderr)
    results = iter(per_image)
    ordered = [
        result
        for path, image in decoded
        for result in (
            [error_record(path, image.reason)] if isinstance(image, ImageError) else next(results)
        )
    ]
    if args.json:
        print_json(ordered)
    else:
        print_comparison(ordered, [spec.name for spec in specs])
    if args.plot and images and len(failures) < len(specs):
        from .plot import plot_comparison

        titles = {spec.name: _chart_title(spec.name, weights[spec.name]) for spec in specs}
        plot_comparison(images, per_image, titles, args.plot)
        print(f"zoo: wrote {args.plot}", file=sys.stderr)
    return EXIT_ERROR if failures or len(images) < len(decoded) else 0


def _chart_title(model: str, weights: str) -> str:
    if weights == "imagenet":
        return model
    return f"{model} ({'random init' if weights == 'none' else os.path.basename(weights)})"
