"""``zoo predict --engine ray`` against ``--engine local``: same files, model and batch size.

On the folder ``benchmarks/pipeline.py`` builds (``--images`` distinct JPEGs cut from the
shared photos, plus one corrupt file), for each model, side by side, each in its own process:

  * local: ``zoo predict FILE FOLDER --jsonl --batch-size N --provider cpu`` (all cores);
  * ray: the same with ``--engine ray --actors A --threads 1``, for each A in ``--actors``,
    each command starting its own Ray; then, for the largest pool, joining a Ray started
    beforehand on this machine (``ray start --head``), as repeated runs would.

For each run: the whole command's images/s (start-up, Ray's included) and its steady state
(from the first batch's records to the last), and the seconds it took. Every run must give
``--images`` predictions and one error, exit 1, and the Ray records must equal the local ones
(sorted by file: Ray's order is not the input order). Then, for the largest pool, the same
with ``--output DIR`` instead of ``--jsonl`` must write those records to DIR.

Ratios: Ray's steady state / local's, and the scaling efficiency from the smallest pool to
each larger one: (images/s with A actors) / (A/A0 x images/s with A0 actors).

    python benchmarks/ray_pipeline.py --model resnet50.onnx --model mobilenet.int8.onnx \\
        [--images 1000] [--batch 32] [--actors 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_table import print_table
from pipeline import SHARED_IMAGES, make_folder, timed_predict


def against_local(name: str, label: str, run: dict, local: dict) -> list[str]:
    """A Ray run's table row: its times, its speed against the local engine's run, and
    whether its records are the local ones ("yes" or "NO")."""
    same = by_image(run["records"]) == by_image(local["records"])
    return [name, label, f"{run['seconds']:.1f}", f"{run['whole']:.1f}", f"{run['steady']:.1f}",
            f"{run['steady'] / local['steady']:.0%} steady, "
            f"{run['seconds'] - local['seconds']:+.1f} s whole",
            "yes" if same else "NO"]  # fmt: skip


@contextlib.contextmanager
def running_ray(cpus: int):
    """A Ray head on this machine, started beforehand as a user would (``ray start --head``);
    ``--block`` keeps its processes ours, so that stopping it stops only them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}",
         "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},  # a head on this machine, for us only
    )  # fmt: skip
    try:
        time.sleep(15)  # started well before the command, as it would be
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        head.wait(60)


def by_image(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda record: record["image"])


def check_output_folder(onnx: str, folder: Path, batch: int, actors: int, expected: list[dict]):
    """``--output DIR``: exit 1, and DIR/predictions.jsonl holds the local run's records."""
    with tempfile.TemporaryDirectory(prefix="zoo-bench-ray-out-") as out:
        done = subprocess.run(
            ["zoo", "predict", onnx, str(folder), "--engine", "ray", "--actors", str(actors),
             "--threads", "1", "--batch-size", str(batch), "--provider", "cpu", "--output", out],
            capture_output=True, text=True,
        )  # fmt: skip
        lines = (Path(out) / "predictions.jsonl").read_text().splitlines()
    written = [json.loads(line) for line in lines]
    if done.returncode != 1 or by_image(written) != by_image(expected):
        sys.exit(f"--output: exit {done.returncode}, {len(written)} records:\n{done.stderr}")
    print(f"--output {actors} actors: {done.stdout.strip()} (exit 1)", file=sys.stderr)


def cpu() -> str:
    """The processor's name, and whether it has AVX-512 VNNI (int8 dot products)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line]
    name = names[0] if names else platform.machine()
    return name + (", AVX-512 VNNI" if "avx512_vnni" in info else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help=".onnx file (repeat)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--actors", default="1,2", help="pool sizes, 1 thread per actor")
    args = parser.parse_args()
    if not SHARED_IMAGES.is_dir():
        sys.exit(f"{SHARED_IMAGES} is absent: the benchmark makes its images from those photos")
    pools = [int(a) for a in args.actors.split(",")]

    rows, scaling = [], []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-ray-") as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        make_folder(folder, args.images)
        for onnx in args.model:
            name = Path(onnx).name
            print(f"measuring {name}: local", file=sys.stderr)
            local = timed_predict(onnx, folder, args.batch, args.images)
            rows.append([name, "local", f"{local['seconds']:.1f}", f"{local['whole']:.1f}",
                         f"{local['steady']:.1f}", "", "yes"])  # fmt: skip
            steady = {}
            for actors in pools:
                print(f"measuring {name}: ray, {actors} actors", file=sys.stderr)
                ray = timed_predict(onnx, folder, args.batch, args.images,
                          "--engine", "ray", "--actors", str(actors), "--threads", "1")  # fmt: skip
                steady[actors] = ray["steady"]
                rows.append(against_local(name, f"ray, {actors} x 1 thread", ray, local))
                if rows[-1][-1] != "yes":
                    sys.exit(f"{name}: Ray's records differ from the local ones")
            with running_ray(os.cpu_count() or 1) as address:
                print(
                    f"measuring {name}: ray started beforehand, {pools[-1]} actors", file=sys.stderr
                )
                options = ["--engine", "ray", "--actors", str(pools[-1]), "--threads", "1",
                           "--address", address]  # fmt: skip
                warm = timed_predict(onnx, folder, args.batch, args.images, *options)
            label = f"ray (already running), {pools[-1]} x 1 thread"
            rows.append(against_local(name, label, warm, local))
            smallest = pools[0]
            for actors in pools[1:]:
                ideal = steady[smallest] * actors / smallest
                scaling.append([name, f"{smallest} -> {actors}", f"{steady[actors] / ideal:.2f}"])
            check_output_folder(onnx, folder, args.batch, pools[-1], local["records"])

    print(
        f"{args.images} JPEGs (+1 corrupt), batch {args.batch}, {os.cpu_count()} CPUs ({cpu()})\n"
    )
    print_table(["model", "engine", "seconds", "whole images/s", "steady images/s",
                 "ray / local", "records = local"], rows)  # fmt: skip
    print()
    print_table(["model", "actors", "scaling efficiency"], scaling)


if __name__ == "__main__":
    main()
