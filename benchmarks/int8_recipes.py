"""int8 recipes for MobileNet, measured on this CPU and predicted for x86 CPUs without VNNI.

For each recipe (``zoo.exporters.precision.Int8Recipe``: format, weight type, reduce_range,
per-channel, calibration method and photos, layers left in float), from one verified float32
export of MobileNet with the given weights:

  * agreement with float32 Keras on zoo's sample photos plus ``--images`` (top-1 agreement,
    mean top-5 overlap, max probability difference), at batch 1 and 8 as ``zoo export`` does,
    with ONNX Runtime on this CPU;
  * the same on an emulated AVX2-only CPU (Haswell, no AVX-512, no VNNI): the same ONNX
    Runtime wheel run under ``qemu-x86_64 -cpu Haswell-noTSX``, whose CPUID makes ONNX
    Runtime pick its non-VNNI kernels, the ones that saturate (``--no-qemu`` skips it);
  * int8 against float32 speed on this CPU at batch 32: every file's session (float32 and
    each recipe's) timed in turn, ``--runs`` runs each, for ``--rounds`` rounds; the median.

    python benchmarks/int8_recipes.py --weights W.h5 --images DIR [--out DIR] [--runs 10]
        [--only NAME,NAME]

Writes ``int8_recipes.json`` and prints a Markdown table. Needs the keras extra (TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from markdown_table import print_table

from zoo.base.hardware import cpu_class, cpu_name, onnxruntime_version
from zoo.exporters.agreement import THRESHOLDS, AgreementReport, PhotoAgreement
from zoo.exporters.keras_outputs import keras_reference, load_photos, logits_model, top_indices
from zoo.exporters.onnx import export_onnx
from zoo.exporters.precision import Int8Recipe, quantize_int8
from zoo.model.labels import resolve_labels
from zoo.model.spec import ExportOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.onnx_file import load_onnx, open_session
from zoo.runtime.preprocessing import preprocess
from zoo.runtime.samples import image_files, verification_images
from zoo.sources.keras_model import build_keras_model

REDUCED = Int8Recipe(reduce_range=True)
FULL_RANGE = Int8Recipe(reduce_range=False)
RECIPES = {
    # The starting point and ONNX Runtime's two documented ways out of saturation.
    "u8s8": FULL_RANGE,
    "u8s8 reduce_range": REDUCED,
    "u8u8": replace(FULL_RANGE, weight_type="uint8"),
    # Each other choice, one at a time, from the full-range and the reduce_range recipes.
    "u8s8, first conv float": replace(FULL_RANGE, float_layers=("first",)),
    "u8s8, first+last float": replace(FULL_RANGE, float_layers=("first", "last")),
    "u8s8 reduce_range, per-tensor": replace(REDUCED, per_channel=False),
    "u8s8 reduce_range, QOperator": replace(REDUCED, quant_format="qoperator"),
    "u8s8 reduce_range, entropy": replace(REDUCED, calibration_method="entropy"),
    "u8s8 reduce_range, percentile": replace(REDUCED, calibration_method="percentile"),
    "u8s8 reduce_range, first conv float": replace(REDUCED, float_layers=("first",)),
}
CALIBRATIONS = ("samples", "all")
"""Calibrated on zoo's 6 sample photos (``zoo export``'s default), or on all photos."""

AVX2_CPU = "Haswell-noTSX"
QEMU_RUN = """
import sys
import numpy as np
import onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as features
seen = {f: bool(features.get(f)) for f in ("AVX2", "AVX512F", "AVX512_VNNI", "AVX512VNNI")}
print("cpu features seen:", seen, file=sys.stderr)
if not seen["AVX2"] or seen["AVX512F"]:
    sys.exit("qemu did not present an AVX2-only CPU")
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
feed = dict(np.load(sys.argv[2]))
names = [o.name for o in session.get_outputs() if o.name in ("probabilities", "logits")]
np.savez(sys.argv[3], **dict(zip(names, session.run(names, feed))))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="MobileNet's Keras .h5")
    parser.add_argument("--images", type=Path, required=True, help="photos to check on")
    parser.add_argument("--out", type=Path, default=Path("int8-recipes"), help="output folder")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per file and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all files")
    parser.add_argument("--only", help="comma-separated recipe names (default: all)")
    parser.add_argument("--no-qemu", action="store_true", help="skip the emulated AVX2 CPU")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    qemu = None if args.no_qemu else shutil.which("qemu-x86_64")

    spec = get_registry().model("mobilenet")
    samples = verification_images(spec)
    photos = [*samples, *image_files(args.images)]
    pixels = load_photos(photos, get_registry().input_config(spec))
    float32 = args.out / "mobilenet.fp32.onnx"
    if not float32.exists():
        options = ExportOptions(weights=args.weights, images=tuple(image_files(args.images)))
        export_onnx(spec, float32, options)
    keras = build_keras_model(spec, args.weights)
    labels = resolve_labels(spec.labels)
    with logits_model(keras, spec) as (keras, has_logits):
        reference = keras_reference(
            keras, get_registry().preprocessor(spec), labels, photos, pixels, has_logits
        )
    model = load_onnx(float32, provider="cpu")
    inputs = preprocess(pixels, model.preprocessing)

    rows, results = [], []
    chosen = args.only.split(",") if args.only else list(RECIPES)
    for name in chosen:
        for calibration in CALIBRATIONS if name in ("u8s8", "u8s8 reduce_range") else ("samples",):
            recipe = RECIPES[name]
            count = len(samples) if calibration == "samples" else len(photos)
            label = f"{name}, {count} calibration photos"
            print(f"-- {label}", file=sys.stderr, flush=True)
            path = args.out / f"{label.replace(' ', '_').replace(',', '')}.onnx"
            feeds = ({model.runner.card.input_name: inputs[i : i + 1]} for i in range(count))
            started = time.perf_counter()
            quantize_int8(float32, path, feeds, recipe)
            quantize_s = time.perf_counter() - started
            here = _agreement_here(reference, path)
            avx2 = _agreement_under_qemu(qemu, reference, inputs, path) if qemu else None
            result = {
                "recipe": name,
                "settings": asdict(recipe),
                "calibration_photos": count,
                "quantize_s": quantize_s,
                "this_cpu": here,
                "avx2_emulated": avx2,
                "path": path,
            }
            results.append(result)
            print(json.dumps({**result, "path": str(path)}), file=sys.stderr, flush=True)
    print("-- speed, batch 32, all files in turn", file=sys.stderr, flush=True)
    timings = _speeds([float32, *(r.pop("path") for r in results)], inputs, args.runs, args.rounds)
    fp32_ms = timings[0]
    for result, int8_ms in zip(results, timings[1:], strict=True):
        result.update(batch32_int8_ms=int8_ms, batch32_fp32_ms=fp32_ms, speedup=fp32_ms / int8_ms)
        rows.append(_row(result))
    machine = {
        "cpu": cpu_name(),
        "cpu_class": cpu_class(),
        "cores": os.cpu_count(),
        "onnxruntime": onnxruntime_version(),
        "emulated_avx2": f"qemu-x86_64 -cpu {AVX2_CPU}" if qemu else None,
    }
    document = {"machine": machine, "photos": [p.name for p in photos], "recipes": results}
    (args.out / "int8_recipes.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"{machine['cpu']} ({machine['cpu_class']}, {machine['cores']} cores), "
          f"ONNX Runtime {machine['onnxruntime']}; AVX2: {machine['emulated_avx2']}")  # fmt: skip
    print_table(
        [
            "recipe",
            f"top-1 ({machine['cpu_class']})",
            "top-5 overlap",
            "max prob diff",
            "top-1 (AVX2, emulated)",
            "top-5 overlap",
            "max prob diff",
            "int8 / fp32 ms, batch 32",
            "speed-up",
        ],
        rows,
    )
    return 0


def _agreement_here(reference, path: Path) -> dict:
    from zoo.exporters.agreement import agreement

    report = agreement(reference, load_onnx(path, provider="cpu"), "int8", (1, 8))
    return _figures(report)


def _agreement_under_qemu(qemu: str, reference, inputs: np.ndarray, path: Path) -> dict:
    """The int8 file run by the same ONNX Runtime on an emulated Haswell, batch of all photos."""
    with tempfile.TemporaryDirectory() as folder:
        feed, out, script = (Path(folder) / n for n in ("feed.npz", "out.npz", "run.py"))
        np.savez(feed, image=inputs)
        script.write_text(QEMU_RUN)
        command = [qemu, "-cpu", AVX2_CPU, sys.executable, script, path, feed, out]
        done = subprocess.run(list(map(str, command)), capture_output=True, text=True)
        if done.returncode != 0:
            lines = [x for x in done.stderr.splitlines() if "TCG doesn't support" not in x]
            raise SystemExit(f"qemu run failed: {' | '.join(lines[-3:])}")
        outputs = dict(np.load(out))
    report = AgreementReport("mobilenet", "int8", THRESHOLDS["int8"])
    scores = outputs.get("logits", outputs["probabilities"])
    keras_scores = reference.logits if "logits" in outputs else reference.probabilities
    for i, name in enumerate(reference.names):
        diff = np.abs(reference.probabilities[i] - outputs["probabilities"][i].astype(np.float64))
        keras_top, onnx_top = top_indices(keras_scores[i]), top_indices(scores[i])
        report.photos.append(
            PhotoAgreement(name, len(reference.names), keras_top, onnx_top, float(diff.max()))
        )
    return _figures(report)


def _figures(report: AgreementReport) -> dict:
    photos = len({p.image for p in report.photos})
    per_photo: dict[str, bool] = {}
    for p in report.photos:  # a photo agrees when it does at every batch size
        per_photo[p.image] = per_photo.get(p.image, True) and p.top1_agrees
    return {
        "top1_agreement": report.top1_agreement,
        "top1_photos": f"{sum(per_photo.values())}/{photos}",
        "top5_overlap": report.top5_overlap,
        "max_probability_diff": report.max_probability_diff,
        "disagreeing": sorted({p.image for p in report.photos if not p.top1_agrees}),
    }


def _speeds(paths: list[Path], inputs: np.ndarray, runs: int, rounds: int) -> list[float]:
    """Median batch-32 latency (ms) of each file: each session in turn, ``runs`` runs after a
    warm-up, ``rounds`` times over, so that a busy spell of the machine hits them all."""
    batch = np.resize(inputs, (32, *inputs.shape[1:]))
    timings: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for path, times in zip(paths, timings, strict=True):
            # One session at a time: an idle one's threads keep spinning for a while.
            session = open_session(path, "cpu")
            feed = {session.get_inputs()[0].name: batch}
            session.run(None, feed)  # warm-up
            for _ in range(runs):
                started = time.perf_counter()
                session.run(None, feed)
                times.append(time.perf_counter() - started)
            del session
    return [statistics.median(times) * 1e3 for times in timings]


def _row(result: dict) -> list[str]:
    here, avx2 = result["this_cpu"], result["avx2_emulated"]

    def cells(figures):
        if figures is None:
            return ["—", "—", "—"]
        return [
            f"{figures['top1_photos']} ({figures['top1_agreement']:.0%})",
            f"{figures['top5_overlap']:.2f}",
            f"{figures['max_probability_diff']:.2f}",
        ]

    return [
        f"{result['recipe']}, {result['calibration_photos']} calibration photos",
        *cells(here),
        *cells(avx2),
        f"{result['batch32_int8_ms']:.0f} / {result['batch32_fp32_ms']:.0f}",
        f"{result['speedup']:.2f}x",
    ]


if __name__ == "__main__":
    sys.exit(main())
