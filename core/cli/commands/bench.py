"""``zoo bench``: inference latency and throughput per backend and batch size."""

from __future__ import annotations

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
        help="comma-separated backends (default: keras,onnx)",
    )
    add_deprecated(model, "--backend", backends)
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
    from zoo.runtime.bench import bench, machine
    from zoo.sources.resolver import is_onnx_file

    backends = ["onnx"] if is_onnx_file(args.model) else args.backends
    results = []
    for backend in backends:
        status(f"loading {args.model} on {backend}")
        provider = args.provider if backend == "onnx" else "auto"  # --provider is ORT's
        model = load(args.model, backend, args.weights, provider, args.threads)
        results += bench(model, args.batch_sizes, runs=args.runs, progress=status)
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
