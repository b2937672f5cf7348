"""zoo on an NVIDIA GPU, measured once: what the CUDA provider, fp16 and micro-batching give.

Run on a GPU machine (``pip install ".[gpu,keras,serve]"``); it finishes in a few minutes:

  * ResNet50 and MobileNet exported as fp32 and fp16 (``--weights``: none by default, so it
    runs offline; the speed does not depend on the weights);
  * ONNX Runtime on the CUDA provider at batch 1, 8, 32 and 128: p50 latency and images/s,
    with the same fp32 files on the CPU provider beside them;
  * Keras on the same GPU, where TensorFlow sees it;
  * ``zoo serve`` of MobileNet fp32 on CUDA with micro-batching against batch-1 serving, at 16
    and 64 clients (``benchmarks/serve_load.py``'s load).

Where there is no usable NVIDIA GPU it says so in one line, runs the CPU rows only (ONNX
Runtime fp32 at the given batch sizes: what CI runs) and exits 0. It writes ``gpu.md`` (the
Markdown table, with the date and the device) and ``gpu.json`` to ``--out``.

    python benchmarks/gpu.py [--models resnet50,mobilenet] [--batches 1,8,32,128]
        [--runs 20] [--clients 16,64] [--duration 10] [--out gpu-results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from zoo.base.errors import BackendUnavailable
from zoo.base.hardware import describe_device, has_nvidia_gpu
from zoo.exporters.onnx import export_onnx
from zoo.model.spec import ExportOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.bench import bench, machine
from zoo.runtime.onnx_file import load_onnx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet50,mobilenet", help="comma-separated")
    parser.add_argument("--batches", default="1,8,32,128", help="comma-separated batch sizes")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per batch size")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="per batch size")
    parser.add_argument("--clients", default="16,64", help="concurrent serving clients")
    parser.add_argument("--duration", type=float, default=10, help="seconds per serving mode")
    parser.add_argument("--weights", default="none", help="weights to export with (none)")
    parser.add_argument("--out", type=Path, default=Path("gpu-results"), help="output folder")
    args = parser.parse_args()
    models = args.models.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    gpu = _cuda_offered()
    if not gpu:
        print(f"no usable NVIDIA GPU here ({describe_device(['CPUExecutionProvider'])}): "
              "running the CPU rows only")  # fmt: skip
    rows, serving = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name in models:
            spec = get_registry().model(name)
            for precision in ("fp32", "fp16") if gpu else ("fp32",):
                path = Path(folder) / f"{name}.{precision}.onnx"
                # fp16 of random weights cannot pass its agreement check: verify real ones only.
                verify = args.weights != "none"
                options = ExportOptions(weights=args.weights, precision=precision, verify=verify)
                export_onnx(spec, path, options)
                for provider in ("cuda", "cpu") if gpu else ("cpu",):
                    if provider == "cpu" and precision == "fp16":
                        continue  # few float16 kernels on the CPU: slower than fp32 there
                    rows += _bench_rows(path, provider, batches, args)
            if gpu:
                rows += _keras_rows(name, args.weights, batches, args)
        if gpu and "mobilenet" in models:
            serving = _serving(Path(folder) / "mobilenet.fp32.onnx", args)
    document = {
        "date": datetime.date.today().isoformat(),
        "device": next(
            (r["device"] for r in rows if r["provider"] == "cuda"),
            describe_device(["CPUExecutionProvider"]),
        ),
        "machine": machine(),
        "inference": rows,
        "serving": serving,
    }
    (args.out / "gpu.json").write_text(json.dumps(document, indent=2) + "\n")
    table = _markdown(document)
    (args.out / "gpu.md").write_text(table)
    print(table, end="")
    return 0


def _cuda_offered() -> bool:
    """An NVIDIA GPU, and an ONNX Runtime build with the CUDA provider."""
    import onnxruntime

    return has_nvidia_gpu() and "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _bench_rows(path: Path, provider: str, batches: list[int], args) -> list[dict]:
    try:
        model = load_onnx(path, provider=provider)
    except BackendUnavailable as error:  # the GPU is there, CUDA does not load: say why
        print(f"zoo: {error}", file=sys.stderr)
        return []
    return [
        {**result.to_dict(), "provider": provider}
        for result in bench(model, batches, runs=args.runs, min_seconds=args.min_seconds)
    ]


def _keras_rows(name: str, weights: str, batches: list[int], args) -> list[dict]:
    try:
        import tensorflow as tf
    except ImportError:
        return []
    if not tf.config.list_physical_devices("GPU"):
        print(f"TensorFlow does not see the GPU: no Keras rows for {name}", file=sys.stderr)
        return []
    import zoo

    model = zoo.load(name, backend="keras", weights=weights)
    return [
        {**result.to_dict(), "provider": "tensorflow"}
        for result in bench(model, batches, runs=args.runs, min_seconds=args.min_seconds)
    ]


def _serving(path: Path, args) -> list[dict]:
    """Micro-batching against batch-1 serving on CUDA, with serve_load.py's clients."""
    from importlib import resources

    import serve_load

    body = (resources.files("zoo") / "data/samples/parrot.jpg").read_bytes()
    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        for clients in (int(c) for c in args.clients.split(",")):
            settings = SimpleNamespace(
                model=str(path), provider="cuda", batch_timeout_ms=5, workers=1, threads=0,
                clients=clients, warmup=3, duration=args.duration,
            )  # fmt: skip
            batching = serve_load.run_mode(settings, "batching", 32, body, Path(folder))
            single = serve_load.run_mode(settings, "batch-1", 1, body, Path(folder))
            outcomes.append(
                {
                    "clients": clients,
                    "batching_requests_per_s": batching.requests_per_s,
                    "batch1_requests_per_s": single.requests_per_s,
                    "ratio": batching.requests_per_s / single.requests_per_s,
                    "batching_p95_ms": batching.p95_ms,
                    "batch1_p95_ms": single.p95_ms,
                    "errors": batching.errors + single.errors,
                }
            )
    return outcomes


def _markdown(document: dict) -> str:
    lines = [
        f"{document['date']}, {document['device']}; CPU rows: {document['machine']['cpu']} "
        f"({document['machine']['cores']} cores)",
        "",
        "| model | precision | provider | batch | p50 ms | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in document["inference"]:
        lines.append(
            f"| {row['model']} | {row['precision']} | {row['provider']} | {row['batch']} "
            f"| {row['p50_ms']:.1f} | {row['images_per_s']:.0f} |"
        )
    if document["serving"]:
        lines += [
            "",
            "| clients | micro-batching req/s | batch-1 req/s | ratio | p95 ms (batching / 1) |",
            "|---|---|---|---|---|",
        ]
        for outcome in document["serving"]:
            lines.append(
                f"| {outcome['clients']} | {outcome['batching_requests_per_s']:.0f} "
                f"| {outcome['batch1_requests_per_s']:.0f} | {outcome['ratio']:.2f}x "
                f"| {outcome['batching_p95_ms']:.0f} / {outcome['batch1_p95_ms']:.0f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
