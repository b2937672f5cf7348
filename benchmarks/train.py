"""``zoo train`` against the Keras transfer-learning guide's recipe, side by side.

On a labelled folder (default ``../shared/data/cifar10-small``, 2,000 CIFAR-10 images) with
MobileNet and a real weights file, each in a fresh process, timed by the wall clock:

  * zoo, cold: ``zoo train mobilenet DATA -o ...`` with an empty zoo home (the backbone is
    exported to ONNX, verified, and every image's features computed), ``--repeat`` times
    (each with its own empty home; the median is compared: a 30-second run samples a
    shared machine's speed over a far shorter window than the recipe's minutes);
  * zoo, warm: the same command again (the features come from the cache);
  * with ``--finetune``, zoo ``--mode finetune`` on the warm features three times: on the
    cached activations of the frozen layers (computed in that run, then cached: a re-run),
    and on the images (``--activation-cache-gb 0``: the whole base in every epoch);
  * the recipe written the plain way: ``image_dataset_from_directory``, the frozen base called
    with ``training=False``, global average pooling, dropout 0.2, a dense softmax, Adam 1e-3,
    ``model.fit`` (the backbone runs on every image in every epoch).

All three train on the same images and validate on the same images: zoo's split of DATA
(hash of the relative path and the seed) is laid out as ``train/`` and ``val/`` symlinks that
both read. Same epochs, same batch size, same resize filter (bilinear, the recipe's default).
Validation top-1: zoo keeps its best epoch (lowest validation loss); for the recipe, its last
epoch and its best are both printed.

    python benchmarks/train.py [--data DIR] [--weights FILE] [--epochs 10] [--per-class N]
        [--repeat 3] [--finetune] [--skip-recipe]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"

RECIPE = """
import json, sys
import keras
data, weights, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(0)
train = keras.utils.image_dataset_from_directory(
    data + "/train", image_size=(224, 224), batch_size=batch, seed=0)
val = keras.utils.image_dataset_from_directory(
    data + "/val", image_size=(224, 224), batch_size=batch, shuffle=False)
full = keras.applications.MobileNet(input_shape=(224, 224, 3), weights=weights)
# include_top=False would not load these ImageNet weights (saved with the top): cut instead.
base = keras.Model(full.input, full.get_layer("conv_pw_13_relu").output)
base.trainable = False
inputs = keras.Input((224, 224, 3))
x = keras.applications.mobilenet.preprocess_input(inputs)
x = base(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(len(train.class_names), activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
history = model.fit(train, validation_data=val, epochs=epochs, verbose=2)
print("RESULT " + json.dumps(history.history["val_accuracy"]))
"""


FINETUNE_RUNS = {
    "finetune, activations computed": ["--activation-cache-gb", "8"],
    "finetune, activations cached (a re-run)": ["--activation-cache-gb", "8"],
    "finetune, images": ["--activation-cache-gb", "0"],
}
"""--finetune: the same fine-tuning with the frozen layers' output cached (computed in the
run, then again with it cached, as a second fine-tuning of the same data is), and with every
epoch running the whole base on the images (the path without the cache)."""


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def split_layout(data: Path, seed: int, folder: Path, per_class: int | None) -> None:
    """zoo's split of ``data`` as train/ and val/ folders of symlinks (the first
    ``per_class`` images of each class, when given)."""
    from zoo.training.dataset import scan

    taken: dict[str, int] = {}
    for item in scan(data, seed=seed).items:
        taken[item.label] = taken.get(item.label, 0) + 1
        if per_class and taken[item.label] > per_class:
            continue
        link = folder / item.split / item.label / item.path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(item.path.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "cifar10-small")
    parser.add_argument(
        "--weights",
        type=Path,
        default=SHARED / "weights" / "mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--per-class", type=int, default=None, help="use only the first N images of each class"
    )
    parser.add_argument("--repeat", type=int, default=3, help="cold zoo runs, median kept (3)")
    parser.add_argument("--skip-recipe", action="store_true", help="time zoo only")
    parser.add_argument(
        "--finetune",
        action="store_true",
        help="also time zoo --mode finetune (warm features), on cached activations and not",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-train-") as scratch:
        scratch = Path(scratch)
        split_layout(args.data, 0, scratch / "data", args.per_class)
        zoo = [
            sys.executable,
            "-m",
            "zoo",
            "train",
            "mobilenet",
            str(scratch / "data"),
            "--weights",
            str(args.weights),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--json",
        ]
        cold = []
        for run in range(args.repeat):
            env = {"ZOO_HOME": str(scratch / f"home{run}"), "ZOO_LOAD_PLUGINS": ""}
            seconds, out = timed([*zoo, "-o", "bench"], env)
            cold.append((seconds, json.loads(out)["metrics"]["val"]["top1"]))
            print(f"zoo cold: {seconds:.1f} s", file=sys.stderr)
        seconds, top1 = sorted(cold)[len(cold) // 2]
        runs = ", ".join(f"{s:.1f}" for s, _ in cold)
        rows = [("zoo cold (median)", seconds, top1, f"runs: {runs} s" if len(cold) > 1 else "")]
        seconds, out = timed([*zoo, "-o", "bench"], env)  # the last cold run's home, now warm
        rows.append(("zoo warm", seconds, json.loads(out)["metrics"]["val"]["top1"], ""))
        print(f"zoo warm: {seconds:.1f} s", file=sys.stderr)
        if args.finetune:  # on the features' warm cache; the activations computed in the run
            tuned = []
            for label, options in FINETUNE_RUNS.items():
                seconds, out = timed([*zoo, "-o", "bench-ft", "--mode", "finetune", *options], env)
                top1 = json.loads(out)["metrics"]["val"]["top1"]
                tuned.append((seconds, top1))
                rows.append((label, seconds, top1, ""))
                print(f"{label}: {seconds:.1f} s", file=sys.stderr)
            images, images_top1 = tuned[-1]
            for row, (seconds, top1) in enumerate(tuned[:-1], start=len(rows) - len(tuned)):
                rows[row] = (
                    *rows[row][:3],
                    f"{images / seconds:.2f}x the speed on the images, val top-1 "
                    f"{100 * (top1 - images_top1):+.1f} points",
                )
        if not args.skip_recipe:
            seconds, out = timed(
                [
                    sys.executable,
                    "-c",
                    RECIPE,
                    str(scratch / "data"),
                    str(args.weights),
                    str(args.epochs),
                    str(args.batch_size),
                ],
                {"TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            accuracies = json.loads(out.split("RESULT ", 1)[1])
            rows.append(
                ("keras recipe", seconds, accuracies[-1], f"best epoch {max(accuracies):.4f}")
            )
    recipe = rows[-1] if not args.skip_recipe else None
    print(
        f"{args.data.name}, {args.epochs} epochs, batch {args.batch_size}; "
        f"{os.cpu_count()} CPUs ({_cpu()})"
    )
    print(f"{'run':<24}{'wall s':>9}{'val top-1':>11}{'speed-up':>10}")
    for label, seconds, top1, note in rows:
        ratio = f"{recipe[1] / seconds:.1f}x" if recipe else ""
        print(f"{label:<24}{seconds:>9.1f}{top1:>11.4f}{ratio:>10}  {note}")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
