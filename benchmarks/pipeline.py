"""End-to-end folder throughput against model-only throughput, at the same batch size.

Makes a folder of ``--images`` JPEGs from the shared photos (random crops, scales and mirror
flips, so that no two files are the same) plus one corrupt file, then for each exported model:

  * model-only: ``zoo bench FILE --batch N`` (preprocessed random pixels, the runner alone);
  * end to end: ``zoo predict FILE FOLDER --jsonl --batch-size N``: the whole command
    (start-up and session creation included), and its steady state, from the first batch's
    results to the last; and the steady state with ``--fast-decode``.

Each in its own process. The end-to-end run must report the corrupt file and classify every
other one; the ratio end-to-end / model-only is what the pipeline delivers of the model's speed.

    python benchmarks/pipeline.py [--models mobilenet,resnet50] [--images 1000] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_table import print_table
from PIL import Image, ImageOps

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/images"


def make_folder(folder: Path, count: int) -> None:
    """``count`` distinct JPEGs cut from the shared photos, and one corrupt file."""
    sources = [Image.open(path).convert("RGB") for path in sorted(SHARED_IMAGES.iterdir())]
    rng = random.Random(0)
    for i in range(count):
        image = rng.choice(sources)
        width, height = image.size
        scale = rng.uniform(0.5, 1.0)
        crop_w, crop_h = int(width * scale), int(height * scale)
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        image = image.crop((left, top, left + crop_w, top + crop_h))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image.save(folder / f"photo{i:04d}.jpg", quality=90)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")


def zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["zoo", *args], capture_output=True, text=True)


def model_only(onnx: str, batch: int) -> float:
    done = zoo(
        "bench", onnx, "--batch-sizes", str(batch), "--runs", "10", "--provider", "cpu", "--json"
    )
    if done.returncode != 0:
        sys.exit(done.stderr)
    return json.loads(done.stdout)["results"][0]["images_per_s"]


def timed_predict(onnx: str, folder: Path, batch: int, count: int, *options: str) -> dict:
    """One ``zoo predict --jsonl`` run over ``folder`` (``count`` images and one corrupt
    file): its records, its images/s start-up included (``whole``), and in its steady state
    (``steady``: from the first batch's results to the last, as the JSON Lines stream out)."""
    command = ["zoo", "predict", onnx, str(folder), "--jsonl", "--batch-size", str(batch),
               "--provider", "cpu", *options]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    arrivals = [(time.perf_counter(), json.loads(line)) for line in process.stdout]
    stderr = process.stderr.read()
    seconds = time.perf_counter() - started
    records = [record for _, record in arrivals]
    errors = [record for record in records if "error" in record]
    if process.wait() != 1 or len(records) != count + 1 or len(errors) != 1:
        sys.exit(f"{command}: exit {process.returncode}, {len(records)} records:\n{stderr}")
    if "corrupt.jpg" not in stderr:
        sys.exit(f"the corrupt file was not reported:\n{stderr}")
    first_batch_done = arrivals[batch - 1][0]
    steady = (len(arrivals) - batch) / (arrivals[-1][0] - first_batch_done)
    return {"seconds": seconds, "whole": count / seconds, "steady": steady, "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet,resnet50")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if not SHARED_IMAGES.is_dir():
        sys.exit(f"{SHARED_IMAGES} is absent: the benchmark makes its images from those photos")

    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-pipeline-") as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        make_folder(folder, args.images)
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                onnx = str(Path(scratch) / f"{model}.{precision}.onnx")
                print(f"exporting {model} ({precision})", file=sys.stderr)
                done = zoo("export", model, "--weights", "none", "--precision",
                           precision, "--no-verify", "-o", onnx)  # fmt: skip
                if done.returncode != 0:
                    sys.exit(done.stderr)
                print(f"measuring {model} ({precision})", file=sys.stderr)
                alone = model_only(onnx, args.batch)
                plain = timed_predict(onnx, folder, args.batch, args.images)
                whole, steady = plain["whole"], plain["steady"]
                fast_decode = timed_predict(onnx, folder, args.batch, args.images, "--fast-decode")
                fast = fast_decode["steady"]
                rows.append(
                    [model, precision, str(args.batch), f"{alone:.1f}",
                     f"{whole:.1f} ({whole / alone:.0%})", f"{steady:.1f} ({steady / alone:.0%})",
                     f"{fast:.1f} ({fast / alone:.0%})"]
                )  # fmt: skip

    print(f"{args.images} JPEGs (+1 corrupt) cut from {SHARED_IMAGES}, batch {args.batch}\n")
    header = ["model", "precision", "batch", "model-only images/s",
              "whole command images/s", "steady state images/s",
              "steady, --fast-decode images/s"]  # fmt: skip
    print_table(header, rows)


if __name__ == "__main__":
    main()
