"""What ONNX Runtime's memory settings and the largest batch cost a server in memory and speed.

A server's session sees batches of every size from 1 up to ``--max-batch-size``; ONNX Runtime
keeps what it allocated for the largest (its CPU arena grows and is not given back, and the
memory pattern is planned per input shape). For each setting, in a fresh process: one session
(``--threads`` intra-op threads) runs batches of 1, 2, 4, ... up to the largest size, then is
timed at batch 1 and at the largest size; reported: images/s at each, and the process's peak
resident memory (VmHWM) against its memory once the session was created.

    python benchmarks/ort_memory.py model.onnx [--threads 2] [--sizes 8,16,32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from markdown_table import print_table

SETTINGS = {
    "arena, pattern (defaults)": (True, True),
    "no arena, pattern": (False, True),
    "arena, no pattern": (True, False),
    "no arena, no pattern": (False, False),
}

PROBE = r"""
import json, re, sys, time
from pathlib import Path
import numpy as np, onnxruntime as ort
path, threads, largest = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
arena, pattern = sys.argv[3] == "1", sys.argv[4] == "1"
def rss(field):
    status = Path("/proc/self/status").read_text()
    return int(re.search(field + r":\s+(\d+) kB", status).group(1)) / 1024
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.enable_cpu_mem_arena = arena
options.enable_mem_pattern = pattern
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
graph_input = session.get_inputs()[0]
size = graph_input.shape[1:3]
dtype = np.uint8 if "uint8" in graph_input.type else np.float32
idle = rss("VmRSS")
rng = np.random.default_rng(0)
def batch(n):
    return (rng.random((n, *size, 3)) * 255).astype(dtype)
n = 1
while n <= largest:
    session.run(None, {graph_input.name: batch(n)})
    n *= 2
session.run(None, {graph_input.name: batch(largest)})
rates = {}
for n in (1, largest):
    data = batch(n)
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < 2:
        session.run(None, {graph_input.name: data})
        runs += 1
    rates[n] = runs * n / elapsed
print(json.dumps({"idle": idle, "peak": rss("VmHWM"), "rates": rates}))
"""


def probe(model: str, threads: int, arena: bool, pattern: bool, largest: int) -> dict:
    flags = ["1" if arena else "0", "1" if pattern else "0"]
    command = [sys.executable, "-c", PROBE, model, str(threads), *flags, str(largest)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported .onnx file")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (2)")
    parser.add_argument("--sizes", default="8,16,32", help="largest batch sizes (8,16,32)")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("ort_memory: reads /proc; Linux only")
    rows = []
    for largest in (int(size) for size in args.sizes.split(",")):
        for name, (arena, pattern) in SETTINGS.items():
            found = probe(args.model, args.threads, arena, pattern, largest)
            rates = {int(k): v for k, v in found["rates"].items()}
            rows.append(
                [
                    str(largest),
                    name,
                    f"{found['idle']:.0f}",
                    f"{found['peak']:.0f}",
                    f"{found['peak'] - found['idle']:.0f}",
                    f"{rates[1]:.0f}",
                    f"{rates[largest]:.0f}",
                ]
            )
    header = ["LARGEST BATCH", "SETTING", "AFTER LOAD MIB", "PEAK MIB", "GROWTH MIB"]
    print_table([*header, "IMG/S AT 1", "IMG/S AT LARGEST"], rows)


if __name__ == "__main__":
    main()
