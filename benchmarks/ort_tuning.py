"""ONNX Runtime settings, measured one by one on zoo's exports rather than assumed.

For each exported model, on the CPU, one session at a time (idle sessions keep their threads
spinning, which would slow the next one down):

  * graph optimisation level: disabled, basic, extended, all (zoo uses all);
  * intra-op threads: 1, and one per core (zoo's default);
  * thread spinning off (``session.intra_op.allow_spinning = 0``), alone and with decoding
    threads working beside it, as in ``zoo predict`` over a folder;
  * an optimised model saved at export time: session creation from it against from the
    exported file, and its latency.

p50 latency (ms) at batch 1 and 32 after a warm-up; the session creation time (ms).

    python benchmarks/ort_tuning.py model.onnx [more.onnx ...] [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from markdown_table import print_table

from zoo.runtime.onnx_file import read_card

LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def options(level="all", threads=0, spinning=True, save_to: Path | None = None):
    settings = ort.SessionOptions()
    settings.graph_optimization_level = LEVELS[level]
    settings.intra_op_num_threads = threads
    if not spinning:
        settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if save_to:
        settings.optimized_model_filepath = str(save_to)
    return settings


def busy_decoding(stop: threading.Event) -> None:
    """What a decoding thread of ``zoo predict`` does: Pillow work that releases the GIL."""
    from PIL import Image

    image = Image.new("RGB", (1280, 720), (90, 120, 150))
    while not stop.is_set():
        image.resize((224, 224), Image.Resampling.BILINEAR)


def measure(path: Path, settings, runs: int, batches=(1, 32), decoding=False) -> dict:
    started = time.perf_counter()
    session = ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
    created_ms = (time.perf_counter() - started) * 1e3
    card = read_card(session, path)
    result = {"create_ms": created_ms}
    stop = threading.Event()
    helper = threading.Thread(target=busy_decoding, args=(stop,), daemon=True)
    if decoding:
        helper.start()
    try:
        for batch in batches:
            feed = {
                card.input_name: np.random.default_rng(0)
                .uniform(-1, 1, (batch, *card.input.size, 3))
                .astype(np.float32)
            }
            for _ in range(2):
                session.run(None, feed)
            timings = []
            for _ in range(runs):
                begin = time.perf_counter()
                session.run(None, feed)
                timings.append(time.perf_counter() - begin)
            result[batch] = statistics.median(timings) * 1e3
    finally:
        stop.set()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="zoo-exported .onnx files")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    table = []
    for path in args.models:
        cases = {f"level {name}": options(level=name) for name in LEVELS}
        cases["1 thread"] = options(threads=1)
        cases["spinning off"] = options(spinning=False)
        rows = {name: measure(path, settings, args.runs) for name, settings in cases.items()}
        rows["spinning on, decoding beside"] = measure(path, options(), args.runs, decoding=True)
        rows["spinning off, decoding beside"] = measure(
            path, options(spinning=False), args.runs, decoding=True
        )
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / "optimized.onnx"
            measure(path, options(level="extended", save_to=saved), 1, batches=())
            rows["saved optimised (extended), then all"] = measure(saved, options(), args.runs)
        table += [
            [path.stem, name, f"{row['create_ms']:.0f}", f"{row[1]:.1f}", f"{row[32]:.1f}"]
            for name, row in rows.items()
        ]
    print_table(["model", "setting", "create ms", "batch 1 ms", "batch 32 ms"], table)


if __name__ == "__main__":
    main()
