"""Inference speed: Keras against ONNX Runtime float32 and int8, for each model, in one run.

For each model: export it twice with zoo (float32, and int8 calibrated on zoo's sample
photos), then ``zoo bench`` each in its own process: Keras's ``model.predict`` on the
registered model, and ONNX Runtime on both files, at batch 1 and 32. Printed side by side with
the ratios ONNX Runtime / Keras and int8 / float32 (p50 latency).

Weights: random init (offline), except MobileNet, which uses the real ImageNet weights from
``../shared/data`` when they are there: int8's speed does not depend on the weights, but its
agreement does, and the export verifies it.

    python benchmarks/inference.py [--models mobilenet,resnet50] [--batch 1,32] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from markdown_table import print_table

MODELS = ("mobilenet", "resnet50", "inception_v3", "vgg16")
REAL_WEIGHTS = {
    "mobilenet": Path(__file__).resolve().parents[2]
    / "shared/data/weights/mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5",
}


def zoo(*args: str) -> str:
    """Run a zoo command; its stdout, or exit with its error."""
    done = subprocess.run(["zoo", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"zoo {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def bench(target: str, backend: str, batches: str, runs: int, weights: str) -> dict:
    """``zoo bench`` in a fresh process: {batch: result}, and the machine it ran on."""
    report = json.loads(
        zoo("bench", target, "--backends", backend, "--batch-sizes", batches, "--runs", str(runs),
            "--weights", weights, "--provider", "cpu", "--json")
    )  # fmt: skip
    return {"machine": report["machine"], **{r["batch"]: r for r in report["results"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per batch size, at least")
    args = parser.parse_args()

    rows, machine = [], None
    with tempfile.TemporaryDirectory(prefix="zoo-bench-inference-") as folder:
        for model in args.models.split(","):
            real = REAL_WEIGHTS.get(model)
            weights = str(real) if real and real.is_file() else "none"
            files = {}
            for precision in ("fp32", "int8"):
                files[precision] = str(Path(folder) / f"{model}.{precision}.onnx")
                print(f"exporting {model} ({precision}, weights: {weights})", file=sys.stderr)
                # Random weights: only the speed counts, their agreement means nothing.
                verify = [] if weights != "none" else ["--no-verify"]
                zoo("export", model, "--precision", precision, "--weights", weights,
                    "-o", files[precision], *verify)  # fmt: skip
            print(f"benchmarking {model}", file=sys.stderr)
            keras = bench(model, "keras", args.batch, args.runs, weights)
            fp32 = bench(files["fp32"], "onnx", args.batch, args.runs, weights)
            int8 = bench(files["int8"], "onnx", args.batch, args.runs, weights)
            machine = keras["machine"]
            for batch in map(int, args.batch.split(",")):
                k, f, q = keras[batch]["p50_ms"], fp32[batch]["p50_ms"], int8[batch]["p50_ms"]
                rows.append(
                    [model, "real" if weights != "none" else "random", str(batch), f"{k:.1f}",
                     f"{f:.1f}", f"{q:.1f}", f"{k / f:.2f}x", f"{f / q:.2f}x",
                     f"{batch / q * 1e3:.0f}"]
                )  # fmt: skip

    versions = ", ".join(f"{name} {v}" for name, v in machine["libraries"].items())
    print(f"{machine['cpu']} ({machine['cores']} cores); {versions}\n")
    header = ["model", "weights", "batch", "Keras ms", "ORT fp32 ms", "ORT int8 ms",
              "fp32 vs Keras", "int8 vs fp32", "int8 images/s"]  # fmt: skip
    print_table(header, rows)


if __name__ == "__main__":
    main()
