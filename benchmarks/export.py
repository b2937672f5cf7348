"""zoo's ONNX export against Keras's own ``model.export(format="onnx")``, side by side.

For each model (random-init weights, so it runs offline), in separate processes:
  * ``zoo export MODEL --onnx --weights none`` — the whole command, verification included;
  * Keras: build the same model, ``model.export(path, format="onnx")``.
Each is timed (wall clock) and its peak RSS read from the kernel (``wait4``); a process over
``--memory-cap`` GiB is killed and reported as such. Then both files are run on ONNX Runtime
(CPU, same session options) at batch 1 and 32: the median of ``--runs`` runs after a warm-up,
in three blocks alternating between the two files; the best block counts.

    python benchmarks/export.py [--models resnet50,vgg16] [--memory-cap 20] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS = ("mobilenet", "resnet50", "inception_v3", "vgg16")
KERAS_EXPORT = """
import sys
import numpy as np
from zoo.registry import get_registry
from zoo.keras_model import build_keras_model
spec = get_registry().model(sys.argv[1])
model = build_keras_model(spec, None)
model(np.zeros((1, *spec.input_size, 3), np.float32))  # export refuses a never-called model
model.export(sys.argv[2], format="onnx", verbose=False)
"""


@dataclass
class Run:
    seconds: float
    peak_rss_gib: float
    ok: bool
    note: str = ""


def measure(command: list[str], memory_cap_gib: float) -> Run:
    """Run ``command``; its wall time and peak RSS, killing it above the memory cap."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = threading.Event()

    def watch() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                rss_kib = next(
                    int(line.split()[1])
                    for line in status.read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
            except (OSError, StopIteration):
                return
            if rss_kib > memory_cap_gib * 2**20:
                killed.set()
                process.kill()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    seconds = time.monotonic() - started
    peak = usage.ru_maxrss / 2**20  # KiB -> GiB
    if killed.is_set():
        return Run(seconds, peak, False, f"killed above {memory_cap_gib:g} GiB")
    if process.returncode != 0:
        return Run(seconds, peak, False, (stderr.strip().splitlines() or ["failed"])[-1][:80])
    return Run(seconds, peak, True)


def onnx_latency_ms(paths: dict[str, Path], batch: int, runs: int, blocks: int = 3):
    """Latency of each file on ONNX Runtime (CPU): the median of ``runs`` back-to-back runs,
    in ``blocks`` blocks that alternate between the files; the best block counts. Alternating
    run by run would not be fair: a session's threads spin for a while after each run and
    would slow the other session down."""
    import onnxruntime as ort

    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in paths.items()
    }
    height, width = next(iter(sessions.values())).get_inputs()[0].shape[1:3]
    batch_input = np.random.default_rng(0).normal(size=(batch, height, width, 3)).astype(np.float32)

    def run(session) -> float:
        started = time.perf_counter()
        session.run([session.get_outputs()[-1].name], {session.get_inputs()[0].name: batch_input})
        return (time.perf_counter() - started) * 1000

    best = {name: float("inf") for name in sessions}
    for _ in range(blocks):
        for name, session in sessions.items():
            run(session)  # warm-up
            block = statistics.median(run(session) for _ in range(runs))
            best[name] = min(best[name], block)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--memory-cap", type=float, default=16.0, help="GiB (default 16)")
    parser.add_argument("--runs", type=int, default=10, help="timed ONNX Runtime runs per block")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models.split(","):
            zoo_path = Path(folder, f"{model}.onnx")
            keras_path = Path(folder, f"{model}-keras.onnx")
            print(f"{model}: zoo export ...", file=sys.stderr, flush=True)
            zoo_command = ["zoo", "export", model, "--weights", "none", "-o", str(zoo_path)]
            zoo_run = measure([sys.executable, "-m", *zoo_command], args.memory_cap)
            print(f"{model}: Keras model.export ...", file=sys.stderr, flush=True)
            keras_run = measure(
                [sys.executable, "-c", KERAS_EXPORT, model, str(keras_path)], args.memory_cap
            )
            paths = {"zoo": zoo_path} | ({"keras": keras_path} if keras_run.ok else {})
            latency = {
                (name, batch): milliseconds
                for batch in (1, 32)
                for name, milliseconds in onnx_latency_ms(paths, batch, args.runs).items()
            }
            rows.append((model, zoo_run, keras_run, latency))

    print(
        "| model | zoo export (verified) | Keras export | speed-up | zoo peak RSS | Keras peak RSS"
        " | ORT batch 1: zoo / Keras's | ORT batch 32: zoo / Keras's |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model, zoo_run, keras_run, latency in rows:
        speedup = keras_run.seconds / zoo_run.seconds if keras_run.ok and zoo_run.ok else None
        print(
            f"| {model} | {_time(zoo_run)} | {_time(keras_run)} | "
            f"{f'{speedup:.1f}x' if speedup else '—'} | {zoo_run.peak_rss_gib:.2f} GiB | "
            f"{keras_run.peak_rss_gib:.2f} GiB | {_pair(latency, 1)} | {_pair(latency, 32)} |"
        )


def _time(run: Run) -> str:
    return f"{run.seconds:.1f} s" if run.ok else f"{run.note} after {run.seconds:.0f} s"


def _pair(latency: dict, batch: int) -> str:
    zoo_ms, keras_ms = latency["zoo", batch], latency.get(("keras", batch))
    if keras_ms is None:
        return f"{zoo_ms:.0f} ms / —"
    return f"{zoo_ms:.0f} / {keras_ms:.0f} ms ({keras_ms / zoo_ms:.2f}x)"


if __name__ == "__main__":
    main()
