"""What ``zoo train``'s defaults are worth, on images it never trained or tuned on.

Each data set (default: ``../shared/data/cifar10-small`` and ``flowers-small``) is cut once, by
a hash of each file's relative path, into a pool (75% of each class) and a held-out test set
(25%). Every run trains on the pool only, and is scored on the test set by ``zoo evaluate``:

  * zoo with the settings of the candidates (the old defaults, the resize filter, the refit on
    training + validation images, light augmentation: today's defaults), MobileNet with real
    weights;
  * the Keras recipe of ``benchmarks/train.py`` (``image_dataset_from_directory``, bilinear,
    frozen base, the same head), trained on the whole pool for the same epochs and scored on the
    same test set.

The test sets choose nothing: the candidates are fixed before the run. One zoo home serves every
run of a data set, so the features of each resize filter are computed once.

    python benchmarks/train_defaults.py [--data DIR ...] [--weights FILE] [--skip-recipe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from markdown_table import print_table
from train import RECIPE, SHARED, _cpu, timed

CANDIDATES = {
    "old defaults (nearest, no refit)": [
        "--interpolation",
        "nearest",
        "--no-refit",
        "--augment",
        "0",
    ],
    "nearest, refit": ["--interpolation", "nearest", "--augment", "0"],
    "bilinear, no refit": ["--interpolation", "bilinear", "--no-refit", "--augment", "0"],
    "bilinear, refit": ["--interpolation", "bilinear", "--augment", "0"],
    "zoo defaults (bilinear, refit, --augment 2)": [],
}
"""Each names every setting it is about, so that it measures the same thing whatever the
defaults are; the last is the defaults, no flags."""
TEST_FRACTION = 0.25


def held_out_layout(data: Path, folder: Path) -> tuple[Path, Path, dict[str, int]]:
    """``data`` as ``pool/`` and ``test/`` folders of symlinks; the test set is each class's
    files whose path hashes below ``TEST_FRACTION``."""
    counts = {"pool": 0, "test": 0}
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        relative = path.relative_to(data).as_posix()
        digest = int(hashlib.sha256(f"held-out:{relative}".encode()).hexdigest()[:8], 16)
        part = "test" if digest / 0xFFFFFFFF < TEST_FRACTION else "pool"
        link = folder / part / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
        counts[part] += 1
    return folder / "pool", folder / "test", counts


def zoo(*args: str, home: Path) -> dict:
    _, out = timed([sys.executable, "-m", "zoo", *args, "--json"], {"ZOO_HOME": str(home)})
    return json.loads(out)


def recipe_top1(pool: Path, test: Path, weights: Path, epochs: int, scratch: Path) -> float:
    """The recipe trained on the whole pool; its accuracy on the test set after the last
    epoch (``benchmarks/train.py``'s recipe reads ``train/`` and ``val/``)."""
    layout = scratch / "recipe"
    layout.mkdir()
    (layout / "train").symlink_to(pool)
    (layout / "val").symlink_to(test)
    _, out = timed(
        [sys.executable, "-c", RECIPE, str(layout), str(weights), str(epochs), "32"],
        {"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return json.loads(out.split("RESULT ", 1)[1])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=[SHARED / "cifar10-small", SHARED / "flowers-small"],
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=SHARED / "weights" / "mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-recipe", action="store_true")
    args = parser.parse_args()
    rows = []
    for data in args.data:
        with tempfile.TemporaryDirectory(prefix="zoo-bench-defaults-") as scratch:
            scratch = Path(scratch)
            pool, test, counts = held_out_layout(data, scratch / "data")
            print(f"{data.name}: {counts['pool']} pool, {counts['test']} test", file=sys.stderr)
            home = scratch / "home"
            for label, options in CANDIDATES.items():
                name = f"candidate{len(rows)}"
                train = [
                    "train",
                    "mobilenet",
                    str(pool),
                    "-o",
                    name,
                    "--weights",
                    str(args.weights),
                ]
                trained = zoo(*train, "--epochs", str(args.epochs), *options, home=home)
                scored = zoo("evaluate", name, str(test), home=home)
                rows.append(
                    [
                        data.name,
                        label,
                        f"{scored['top1']:.3f}",
                        f"{trained['metrics']['val']['top1']:.3f}",
                    ]
                )
                print(" | ".join(rows[-1]), file=sys.stderr)
            if not args.skip_recipe:
                top1 = recipe_top1(pool, test, args.weights, args.epochs, scratch)
                rows.append([data.name, "Keras recipe (bilinear, whole pool)", f"{top1:.3f}", ""])
                print(" | ".join(rows[-1]), file=sys.stderr)
    print(f"MobileNet, {args.epochs} epochs; {_cpu()}")
    print_table(["data", "run", "held-out test top-1", "validation top-1"], rows)


if __name__ == "__main__":
    main()
