"""Runtimes side by side: ONNX Runtime fp32 and int8, OpenVINO f32 and bf16, OpenCV DNN, for each
model at batch 1 and 32, each with its agreement with float32, in one run.

For each model: export it with zoo twice (float32, verified against Keras; int8, calibrated on
zoo's sample photos), each ``zoo export`` in its own process so that TensorFlow's memory goes
with it. Then, in this process, with TensorFlow never imported: the float32 file on ONNX
Runtime is the reference (it gives Keras's top-5 exactly: the export checked it); each
configuration is loaded with ``zoo.load``, its precision read back from the runtime, its
agreement measured against the reference on the verification photos (zoo's six samples and
``--images``, at batch 1 and 8: top-1, mean top-5 overlap, largest probability change, against
the thresholds of its precision), then timed with ``zoo bench``'s timer.

Weights: MobileNet's real ImageNet weights from ``../shared/data`` when they are there; the
others random init, for speed only: a random-init model ranks by its logits, so its agreement
says how far a precision moves the logits' order, not how often a real answer changes.

    python benchmarks/runtimes.py [--models mobilenet,resnet50] [--batch-sizes 1,32] [--runs 10]
        [--images ../shared/data/images] [--out runtimes.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from markdown_table import print_table

import zoo
from zoo.base.errors import BackendUnavailable
from zoo.exporters.runtimes import export_reference, measured_agreement
from zoo.runtime.bench import bench, machine, runtime_version
from zoo.runtime.samples import image_files, sample_images

MODELS = ("mobilenet", "resnet50", "inception_v3", "vgg16")
SHARED = Path(__file__).resolve().parents[2] / "shared/data"
REAL_WEIGHTS = {"mobilenet": SHARED / "weights/mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5"}
CONFIGURATIONS = (
    # (label, file, backend, precision asked for)
    ("ONNX Runtime fp32", "fp32", "onnx", None),
    ("ONNX Runtime int8", "int8", "onnx", None),
    ("OpenVINO f32", "fp32", "openvino", "fp32"),
    ("OpenVINO bf16", "fp32", "openvino", "bf16"),
    ("OpenCV DNN", "fp32", "opencv", None),
)


def export(model: str, precision: str, weights: str, path: Path) -> None:
    """``zoo export`` in its own process; random weights' int8 is not verified (its agreement
    with Keras is measured here, against the float32 file, like every configuration's)."""
    verify = ["--no-verify"] if precision != "fp32" and weights == "none" else []
    command = ["zoo", "export", model, "--precision", precision, "--weights", weights,
               "-o", str(path), *verify]  # fmt: skip
    print(f"exporting {model} ({precision}, weights: {weights})", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")


def measure(model: str, files: dict, photos, batches, runs: int) -> list[dict]:
    reference = export_reference(zoo.load(files["fp32"], "onnx", provider="cpu"), photos)
    rows = []
    for label, file, backend, precision in CONFIGURATIONS:
        try:
            loaded = zoo.load(files[file], backend, provider="cpu", precision=precision)
        except BackendUnavailable as error:
            print(f"{model}: {label} skipped: {error}", file=sys.stderr)
            continue
        print(f"{model}: {label} ({loaded.precision})", file=sys.stderr, flush=True)
        agreement = measured_agreement(reference, loaded)
        timings = bench(loaded, batches, runs=runs)
        rows.append(
            {
                "model": model,
                "configuration": label,
                "backend": backend,
                "precision": loaded.precision,
                "runtime": runtime_version(loaded),
                "agreement": agreement.to_dict(),
                "timings": [t.to_dict() for t in timings],
            }
        )
        del loaded
        gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per batch size, at least")
    parser.add_argument("--images", default=str(SHARED / "images"), help="more photos to agree on")
    parser.add_argument("--out", help="also write every measurement here, as JSON")
    args = parser.parse_args()

    batches = [int(b) for b in args.batch_sizes.split(",")]
    extra = image_files(Path(args.images)) if Path(args.images).is_dir() else []
    photos = [*sample_images(), *extra]
    rows, weights_used = [], {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-runtimes-") as folder:
        for model in args.models.split(","):
            real = REAL_WEIGHTS.get(model)
            weights = str(real) if real and real.is_file() else "none"
            weights_used[model] = "real" if weights != "none" else "random init"
            files = {p: Path(folder) / f"{model}.{p}.onnx" for p in ("fp32", "int8")}
            for precision, path in files.items():
                export(model, precision, weights, path)
            rows += measure(model, files, photos, batches, args.runs)
            for path in files.values():
                path.unlink()
    info = machine()
    report = {"machine": info, "photos": len(photos), "weights": weights_used, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print_report(report, batches)


def print_report(report: dict, batches: list[int]) -> None:
    info = report["machine"]
    versions = ", ".join(f"{name} {v}" for name, v in info["libraries"].items())
    print(f"{info['cpu']} ({info['cores']} cores, {info['cpu_class']}); {versions}")
    print(f"CPU flags (lscpu): {' '.join(info['cpu_flags'])}")
    print(f"agreement with the float32 export on ONNX Runtime, on {report['photos']} photos\n")
    baseline = {
        (row["model"], t["batch"]): t["images_per_s"]
        for row in report["rows"]
        if row["configuration"] == "ONNX Runtime fp32"
        for t in row["timings"]
    }
    header = ["model", "weights", "runtime", "precision"]
    for batch in batches:
        header += [f"batch {batch} images/s", f"vs ORT fp32 (batch {batch})"]
    header += ["top-1", "top-5 overlap", "max prob diff", "agrees"]
    table = []
    for row in report["rows"]:
        cells = [row["model"], report["weights"][row["model"]], row["runtime"], row["precision"]]
        for timing in row["timings"]:
            speed = timing["images_per_s"]
            cells += [f"{speed:.1f}", f"{speed / baseline[(row['model'], timing['batch'])]:.2f}x"]
        agreement = row["agreement"]
        photos = len({p["image"] for p in agreement["photos"]})
        same = round(agreement["top1_agreement"] * len(agreement["photos"]))
        cells += [
            f"{same}/{len(agreement['photos'])} ({photos} photos x batch 1, 8)",
            f"{agreement['top5_overlap']:.2f}",
            f"{agreement['max_probability_diff']:.2g}",
            "yes" if agreement["passed"] else "no",
        ]
        table.append(cells)
    print_table(header, table)


if __name__ == "__main__":
    main()
