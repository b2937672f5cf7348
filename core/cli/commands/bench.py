"""``zoo bench``: inference latency and throughput per backend and batch size; with
``--precisions``, every backend at every precision side by side, each with its agreement with
the float32 model and the fastest configuration whose agreement holds marked."""

from __future__ import annotations

import sys

from zoo.base.errors import ZooError
from zoo.base.printing import print_json, print_table
from zoo.base.progress import status
from zoo.cli.options import (
    MODEL_HELP,
    add_deprecated,
    add_json,
    add_keras_file_options,
    add_provider,
    add_threads,
    add_weights,
    comma_list,
    option_groups,
    positive_int,
)


def add_command(commands) -> None:
    bench = commands.add_parser("bench", help="inference latency and throughput per backend")
    bench.add_argument("model", help=MODEL_HELP)
    [model] = option_groups(bench, "model")
    backends = model.add_argument(
        "--backends",
        type=comma_list,
        default=["keras", "onnx"],
        metavar="A,B",
        help="comma-separated backends (default: keras,onnx; a .onnx file: onnx)",
    )
    add_deprecated(model, "--backend", backends)
    model.add_argument(
        "--precisions",
        type=comma_list,
        default=None,
        metavar="A,B",
        help="time each backend at each of these precisions (fp32, bf16, int8...), each with "
        "its agreement with float32 on the verification photos, the fastest that agrees marked",
    )
    add_weights(model)
    add_provider(model)
    add_threads(model)
    add_keras_file_options(bench, "model")
    timing, output = option_groups(bench, "timing", "output")
    batch_sizes = timing.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default=[1, 32],
        metavar="N,M",
        help="comma-separated batch sizes (default: 1,32)",
    )
    add_deprecated(timing, "--batch", batch_sizes)
    timing.add_argument(
        "--runs", type=positive_int, default=20, help="timed runs per batch size, at least (20)"
    )
    add_json(output)
    bench.set_defaults(run=run)


def _batch_sizes(text: str) -> list[int]:
    return [positive_int(part) for part in comma_list(text)]


def run(args) -> int:
    from zoo.runtime.api import load
    from zoo.runtime.bench import bench, machine, runtime_version
    from zoo.sources.resolver import is_onnx_file

    backends = args.backends
    if is_onnx_file(args.model):  # a file runs on the runtimes that read .onnx
        backends = [backend for backend in backends if backend != "keras"] or ["onnx"]
    side_by_side = args.precisions is not None
    reference = _reference(args) if side_by_side else None
    results, configurations, skipped = [], [], []
    for backend in backends:
        for precision in args.precisions or [None]:
            status(f"loading {args.model} on {backend}")
            provider = args.provider if backend == "onnx" else "auto"  # --provider is ORT's
            try:
                model = load(
                    args.model, backend, args.weights, provider, args.threads, precision=precision
                )
            except ZooError as error:  # side by side: a runtime not here, a precision not
                # offered, a lower-precision export that fails its verification: skipped
                if not side_by_side:
                    raise
                skipped.append(error)
                asked = precision or "its default precision"
                print(f"zoo: {backend} at {asked} skipped: {error}", file=sys.stderr)
                continue
            configuration = {
                "backend": backend,
                "precision": model.precision,
                "runtime": runtime_version(model),
            }
            if reference is not None:
                from zoo.exporters.runtimes import measured_agreement

                status(f"measuring {backend} at {model.precision} against float32")
                configuration["agreement"] = measured_agreement(reference, model).to_dict()
            configurations.append(configuration)
            results += bench(model, args.batch_sizes, runs=args.runs, progress=status)
            del model
    if not configurations:
        raise skipped[0] if skipped else ZooError("no backend to time")
    report = {"machine": machine(), "results": [r.to_dict() for r in results]}
    if side_by_side:
        report.update(_side_by_side(results, configurations))
    if args.json:
        print_json(report)
        return 0
    info = report["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in info["libraries"].items())
    print(f"{info['cpu']} ({info['cores']} cores); {versions}")
    if side_by_side:
        print(f"CPU flags: {' '.join(info['cpu_flags'])}")
    for backend, device in dict.fromkeys((r.backend, r.device) for r in results):
        print(f"{backend}: {device}")
    if side_by_side:
        _print_side_by_side(results, report)
    else:
        _print_against_keras(results)
    return 0


def _reference(args):
    """The agreement's reference: the float32 export on ONNX Runtime (for a registered model,
    its verified export from zoo's cache) on the model's verification photos."""
    from zoo.exporters.runtimes import export_reference
    from zoo.plugin.registry import get_registry
    from zoo.runtime.api import load
    from zoo.runtime.samples import sample_images, verification_images
    from zoo.sources.resolver import is_onnx_file

    status(f"loading {args.model}'s float32 export on ONNX Runtime, the agreement's reference")
    reference = load(args.model, "onnx", args.weights, "cpu", args.threads)
    if reference.precision != "fp32":
        raise ZooError(
            f"{args.model} is an {reference.precision} file: bench the float32 export, and "
            "ask for the precisions with --precisions"
        )
    photos = (
        sample_images()
        if is_onnx_file(args.model)
        else verification_images(get_registry().model(args.model))
    )
    return export_reference(reference, photos)


def _side_by_side(results, configurations) -> dict:
    from zoo.exporters.runtimes import fastest

    agrees = {(c["backend"], c["precision"]): c["agreement"]["passed"] for c in configurations}
    best = fastest(results, agrees)
    return {
        "configurations": configurations,
        "fastest": {
            str(batch): {
                "backend": r.backend,
                "precision": r.precision,
                "images_per_s": r.images_per_s,
            }
            for batch, r in best.items()
        },
    }


def _print_side_by_side(results, report) -> None:
    first = results[0]
    baseline = {
        r.batch: r.p50_ms
        for r in results
        if (r.backend, r.precision) == (first.backend, first.precision)
    }
    agreements = {(c["backend"], c["precision"]): c for c in report["configurations"]}
    best = {(int(b), f["backend"], f["precision"]) for b, f in report["fastest"].items()}
    rows = []
    for r in results:
        configuration = agreements[(r.backend, r.precision)]
        measured = configuration["agreement"]
        rows.append(
            [
                r.model,
                r.backend,
                r.precision,
                str(r.batch),
                f"{r.p50_ms:.1f}",
                f"{r.images_per_s:.1f}",
                f"{baseline[r.batch] / r.p50_ms:.2f}x" if r.batch in baseline else "",
                f"{measured['top1_agreement']:.0%}",
                f"{measured['top5_overlap']:.2f}",
                f"{measured['max_probability_diff']:.2g}",
                "yes" if measured["passed"] else "NO",
                "fastest" if (r.batch, r.backend, r.precision) in best else "",
            ]
        )
    print_table(
        [
            "MODEL",
            "BACKEND",
            "PRECISION",
            "BATCH",
            "P50 MS",
            "IMAGES/S",
            f"VS {first.backend} {first.precision}",
            "TOP-1",
            "TOP-5",
            "MAX |P DIFF|",
            "AGREES",
            "",
        ],
        rows,
    )


def _print_against_keras(results) -> None:
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
