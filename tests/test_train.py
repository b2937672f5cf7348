"""zoo train / evaluate / package: the split, bad data, determinism, interruption, and a model
that every zoo command treats like the built-ins. A small random-init CNN keeps them fast."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.model.input_config import InputOverrides
from zoo.plugin.registry import PluginWarning, get_registry
from zoo.sources.bundle_network import read_head
from zoo.training import evaluate, train
from zoo.training.dataset import DatasetError, scan, split_fraction
from zoo.training.reports import REPORT_FILE, EvaluationReport, TrainReport
from zoo.training.settings import TrainSettings

from .conftest import (
    COLOURS,
    SHARED_DATA,
    fresh_venv_seeing_this_one,
    input_config,
    make_image,
    modules_imported,
    run_zoo,
    small_train,
)

# --- the split ---------------------------------------------------------------------------


pytestmark = pytest.mark.tensorflow  # every test here builds Keras models


def test_split_is_deterministic_stratified_and_written_down(data):
    first, second = scan(data, seed=3), scan(data, seed=3)
    assert [(i.relative, i.split) for i in first.items] == [
        (i.relative, i.split) for i in second.items
    ]
    for counts in first.counts().values():
        assert counts["val"] >= 1 and counts["train"] >= 1
    manifest = first.manifest()
    assert {f["split"] for f in manifest["files"]} == {"train", "val"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    other_seed = scan(data, seed=4)
    assert [i.split for i in other_seed.items] != [i.split for i in first.items]


def test_adding_images_moves_no_existing_image(data):
    """Each file's split depends on its path and the seed alone. (The one exception, for a
    class none of whose hashes fell below --val-split, is its one forced validation image.)"""
    before = {i.relative: i.split for i in scan(data).items}
    natural = {p.split("/")[0] for p in before if split_fraction(p, 0) < 0.2}
    rng = np.random.default_rng(1)
    for label in natural:
        for i in range(10, 40):
            make_image(data / label / f"{i:02d}.jpg", COLOURS[label], rng)
    after = {i.relative: i.split for i in scan(data).items}
    assert natural and {path: after[path] for path in before} == before
    assert len(after) == len(before) + 30 * len(natural)


def test_a_class_of_two_gets_one_validation_image(data):
    for extra in sorted((data / "blue").iterdir())[2:]:
        extra.unlink()
    counts = scan(data, val_split=0.01).counts()["blue"]
    assert counts == {"train": 1, "val": 1, "test": 0}


def test_train_val_test_layout_keeps_the_users_split(tmp_path):
    rng = np.random.default_rng(2)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        for label in ("red", "blue"):
            for i in range(n):
                make_image(tmp_path / split / label / f"{i}.png", COLOURS[label], rng)
    dataset = scan(tmp_path)
    assert dataset.layout == "splits"
    assert dataset.counts()["red"] == {"train": 4, "val": 2, "test": 2}


# --- bad data ------------------------------------------------------------------------------


def test_an_empty_class_folder_is_one_clear_error(data):
    (data / "purple").mkdir()
    with pytest.raises(DatasetError, match="'purple' has no usable images"):
        scan(data)


def test_a_single_class_is_one_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        make_image(tmp_path / "only" / f"{i}.jpg", COLOURS["red"], rng)
    with pytest.raises(DatasetError, match=r"at least 2 classes.*found only 'only'"):
        scan(tmp_path)


def test_images_in_the_top_folder_are_one_clear_error(data):
    make_image(data / "stray.jpg", COLOURS["red"], np.random.default_rng(0))
    with pytest.raises(DatasetError, match="directly in the top folder"):
        scan(data)


def test_a_class_with_one_image_is_one_clear_error(data):
    for extra in sorted((data / "blue").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(DatasetError, match="'blue' has 1 usable image"):
        scan(data)


def test_cli_reports_bad_data_in_one_line(data, tmp_path):
    (data / "purple").mkdir()
    result = run_zoo(
        "train",
        "mobilenet",
        str(data),
        "-o",
        "x",
        "--weights",
        "none",
        env={"ZOO_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "zoo: class 'purple' has no usable images (its folder is empty)"
    ]
    assert not (tmp_path / "home" / "bundles" / "x").exists()


def test_unreadable_files_are_skipped_text_counted_16_bit_png_used(home, data):
    (data / "red" / "corrupt.jpg").write_bytes((data / "red" / "00.jpg").read_bytes()[:200])
    (data / "green" / "notes.txt").write_text("not an image")
    (data / "blue" / "text.jpg").write_text("not an image either")
    sixteen = (np.full((40, 40), 30000, np.uint16) + np.arange(40, dtype=np.uint16)).T
    Image.fromarray(sixteen).save(data / "blue" / "deep.png")  # mode I;16
    result = small_train(data, "colours")
    report = result
    assert set(report.unreadable) == {"red/corrupt.jpg", "blue/text.jpg"}
    assert report.stray_files == 1
    files = {f["path"] for f in json.loads((result.path / "manifest.json").read_text())["files"]}
    assert "blue/deep.png" in files and "red/corrupt.jpg" not in files


def test_many_unreadable_files_are_said_once_each_then_counted(home, data, capsys):
    """Each said once, not once per augmented copy; past ``SKIPS_SAID``, one line counts the
    rest (10,000 empty files once gave 26,020 lines). A name with a newline stays one line."""
    from zoo.training.features import SKIPS_SAID

    names = [f"empty{i:02d}.jpg" for i in range(SKIPS_SAID + 5)] + ["line\nbreak.jpg"]
    for name in names:
        (data / "red" / name).write_bytes(b"")
    for i in range(10, 40):  # so that red keeps enough readable images
        shutil.copy(data / "red" / "00.jpg", data / "red" / f"{i}.jpg")
    report = small_train(data, "colours", epochs=2, augment=2)
    assert len(report.unreadable) == len(names)
    skipped = [line for line in capsys.readouterr().err.splitlines() if "skipping" in line]
    assert len(skipped) == SKIPS_SAID + 1
    assert skipped[-1] == "zoo: skipping 6 more unreadable images (the report names them all)"
    said = [line.split(": ")[1] for line in skipped[:-1]]
    assert len(set(said)) == SKIPS_SAID  # each once
    assert all("\n" not in line for line in said)


def test_a_report_table_keeps_a_name_holding_a_newline_on_its_row(capsys):
    from zoo.base.printing import print_table

    print_table(["file", "score"], [["red/a\nb.jpg", "0.9"], ["red/\x1b[2Jc.jpg", "0.8"]])
    assert capsys.readouterr().out.splitlines() == [
        "file              score",
        "red/a\\nb.jpg      0.9",
        "red/\\x1b[2Jc.jpg  0.8",
    ]


def test_a_class_left_with_one_readable_image_fails_and_writes_nothing(home, data):
    for i in range(1, 10):
        (data / "red" / f"{i:02d}.jpg").write_text("broken")
    with pytest.raises(DatasetError, match=r"'red' has 1 usable image \(9 unreadable\)"):
        small_train(data, "colours")
    assert not (home / "bundles" / "colours").exists()


# --- training ------------------------------------------------------------------------------


def test_same_seed_same_model_and_predictions(home, data):
    first = small_train(data, "first", seed=5)
    second = small_train(data, "second", seed=5)
    for a, b in zip(read_head(_weights(first.path)), read_head(_weights(second.path)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.metrics == second.metrics
    assert second.features["computed"] == 0  # all from the cache
    third = small_train(data, "third", seed=6)
    assert not np.array_equal(
        read_head(_weights(third.path))[0], read_head(_weights(first.path))[0]
    )


def test_the_head_learns_and_the_report_says_so(home, data):
    report = small_train(data, "colours")
    val = report.metrics["val"]
    assert val["top1"] > val["baseline_top1"]
    assert len(report.history) == 15
    assert report.history[report.best_epoch - 1]["val_loss"] == min(
        r["val_loss"] for r in report.history
    )
    assert np.array(val["confusion_matrix"]).sum() == val["images"]
    assert [row["class"] for row in val["per_class"]] == ["blue", "green", "red"]


def test_interrupted_training_leaves_no_bundle(home, data):
    def stop(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_train(data, "colours", on_epoch=stop)
    assert not (home / "bundles" / "colours").exists()
    assert list((home / "bundles").iterdir()) == []  # no temporary folder either


def test_interrupted_extraction_keeps_what_it_computed(home, data, monkeypatch):
    from zoo.training import features

    original = features.FeatureCache._runner

    def runner_interrupted_on_its_second_batch(self, jobs, seed):
        run, name, agreement = original(self, jobs, seed)
        calls = []

        def interrupted(batch):
            calls.append(len(batch))
            if len(calls) == 2:
                raise KeyboardInterrupt  # Ctrl-C lands in the thread that runs the model
            return run(batch)

        return interrupted, name, agreement

    monkeypatch.setattr(features.FeatureCache, "_runner", runner_interrupted_on_its_second_batch)
    with pytest.raises(KeyboardInterrupt):
        small_train(data, "colours")  # batches of 8
    assert not (home / "bundles" / "colours").exists()
    monkeypatch.setattr(features.FeatureCache, "_runner", original)
    report = small_train(data, "colours")
    assert report.features["cached"] == 8
    assert report.features["computed"] == 22


def test_augmented_copies_are_cached_features_too(home, data):
    report = small_train(data, "colours", augment=2)
    train_images = sum(c["train"] for c in report.counts.values())
    assert report.features["computed"] == 30 + 2 * train_images


def test_finetune_mode_continues_from_the_head(home, data):
    result = small_train(
        data, "tuned", mode="finetune", unfreeze=1, finetune_epochs=2, finetune_learning_rate=1e-3
    )
    phases = [record["phase"] for record in result.history]
    assert phases == ["head"] * 15 + ["finetune"] * 2
    assert result.mode == "finetune"
    get_registry(refresh=True)
    model = zoo.load("tuned")
    head = read_head(_weights(result.path))
    np.testing.assert_array_equal(
        model.runner.model.get_layer("zoo_head").get_weights()[0], head[0]
    )


def finetune_fast(data, output, **settings):
    tuning = {"unfreeze": 1, "finetune_epochs": 3, "finetune_learning_rate": 1e-3}
    tuning["activation_cache_gb"] = 8
    return small_train(data, output, mode="finetune", **{**tuning, **settings})


def test_finetuning_runs_on_cached_activations_as_it_would_on_the_images(home, data, capsys):
    cached = finetune_fast(data, "cached")
    activations = cached.activations
    assert activations["used"] and activations["layer"] == "conv2"
    assert activations["shape"] == [15, 15, 8]  # conv1's output: what conv2 is fed
    assert activations["dtype"] == "float16"
    assert activations["top1_agreement"] == 1.0 and activations["max_probability_diff"] <= 0.01
    assert (activations["computed"], activations["cached"]) == (30, 0)
    assert activations["bytes"] == 30 * (128 + 15 * 15 * 8 * 2)  # .npy header and data
    files = list((home / "activations").rglob("*.npy"))
    assert len(files) == 30 and {np.load(f).dtype for f in files} == {np.dtype(np.float16)}
    assert finetune_fast(data, "again").activations["cached"] == 30

    capsys.readouterr()
    images = finetune_fast(data, "images", activation_cache_gb=0)  # the default
    reason = "not asked for (--activation-cache-gb 0)"
    assert images.activations == {"used": False, "reason": reason}
    assert "activation" not in capsys.readouterr().err
    # The same epochs on the same inputs, up to float16 rounding of the frozen layer's output.
    tuned = [r for r in cached.history if r["phase"] == "finetune"]
    reference = [r for r in images.history if r["phase"] == "finetune"]
    for a, b in zip(tuned, reference, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-2)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-2)
    assert cached.metrics["val"]["top1"] == images.metrics["val"]["top1"]


def test_the_activation_cache_stays_within_its_bound(home, data, tmp_path, capsys):
    """Files no run needs make room, oldest first; a run needing more than the bound by
    itself trains on the images, says so, and still writes its model."""
    each = 15 * 15 * 8 * 2 + 128  # float16 activations and the .npy header
    finetune_fast(data, "first")
    old = set((home / "activations").rglob("*.npy"))
    other = tmp_path / "other"
    rng = np.random.default_rng(1)
    for label, colour in COLOURS.items():
        for i in range(10):
            make_image(other / label / f"{i:02d}.jpg", colour, rng)
    bound = 40 * each / 1e9  # room for this run's 30 files and 10 of the first's
    second = finetune_fast(other, "second", activation_cache_gb=bound)
    assert second.activations["used"]
    kept = set((home / "activations").rglob("*.npy"))
    assert len(kept - old) == 30 and len(kept & old) <= 10
    assert sum(f.stat().st_size for f in kept) <= bound * 1e9

    too_small = finetune_fast(other, "third", activation_cache_gb=29 * each / 1e9)
    assert not too_small.activations["used"]
    assert "fine-tuning on the images instead" in capsys.readouterr().err
    assert set((home / "activations").rglob("*.npy")) == kept  # nothing removed for nothing
    assert (home / "bundles" / "third" / "card.json").is_file()


def test_augmented_copies_take_turns_in_the_fine_tuning_epochs(home, data):
    report = finetune_fast(data, "augmented", augment=2)
    train_images = sum(c["train"] for c in report.counts.values())
    assert report.activations["computed"] == 30 + 2 * train_images


# --- the bundle is a model like any other ---------------------------------------------------


def test_a_bundle_is_registered_loaded_and_evaluated(home, data):
    result = small_train(data, "colours")
    registry = get_registry(refresh=True)
    spec = registry.model("colours")
    assert registry.owners[("model", "colours")] == "zoo.plugins.bundles"
    expected = sum(min(3, c["val"]) for c in result.counts.values())
    assert len(spec.verification_images) == expected and all(
        Path(p).is_file() for p in spec.verification_images
    )
    # int8 calibrates on training photos: as many per class as fit in 200, none from val.
    calibration = {Path(p).name.split("-", 1)[1] for p in spec.calibration_images}
    assert len(calibration) == sum(min(66, c["train"]) for c in result.counts.values())
    manifest = json.loads((result.path / "manifest.json").read_text())["files"]
    train_files = {f["path"].replace("/", "__") for f in manifest if f["split"] == "train"}
    assert calibration <= train_files and all(Path(p).is_file() for p in spec.calibration_images)
    model = zoo.load("colours")
    assert [label for _, label in model.labels] == ["blue", "green", "red"]
    top = model.predict(str(data / "red" / "00.jpg"), top=3)
    assert {p.label for p in top} == {"blue", "green", "red"}
    val_files = [
        f
        for f in json.loads((result.path / "manifest.json").read_text())["files"]
        if f["split"] == "val"
    ]
    keras_scores = model.probabilities(
        np.stack(
            [
                zoo.runtime.images.load_image(data / f["path"], input_config((32, 32)))
                for f in val_files
            ]
        )
    )
    report = evaluate("colours", data)
    assert report.metrics["images"] == 30
    assert keras_scores.shape == (len(val_files), 3)


@pytest.mark.slow
def test_the_resize_filter_trained_with_is_the_models_everywhere(home, tmp_path):
    # Stripes one pixel wide: nearest and bilinear downscaling give very different pixels.
    root = tmp_path / "stripes"
    for label, period in (("fine", 2), ("coarse", 8)):
        for i in range(6):
            pixels = np.zeros((96, 96, 3), np.uint8)
            pixels[:, (np.arange(96) + i) % period < period // 2] = 255
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    small_train(root, "striped", interpolation="bilinear")
    spec = get_registry(refresh=True).model("striped")
    assert spec.interpolation == "bilinear"
    model = zoo.load("striped")
    image = str(root / "fine" / "0.png")
    assert model.predict(image, top=2) == model.predict(image, top=2, interpolation="bilinear")
    assert model.predict(image, top=2) != model.predict(image, top=2, interpolation="nearest")
    from zoo.exporters.onnx import export_onnx

    export_onnx(spec, tmp_path / "striped.onnx")
    exported = zoo.load(tmp_path / "striped.onnx")
    assert exported.interpolation == "bilinear"
    assert evaluate(tmp_path / "striped.onnx", root) == evaluate(
        tmp_path / "striped.onnx", root, overrides=InputOverrides(interpolation="bilinear")
    )


def test_list_reads_cards_without_tensorflow(home, data):
    small_train(data, "colours")
    result, imported = modules_imported("list", "--json", among=("tensorflow",), quiet=False)
    assert result.returncode == 0 and imported == [], result.stderr
    assert "colours" in {row["name"] for row in json.loads(result.stdout)}


@pytest.mark.slow
def test_onnx_export_verifies_on_the_bundles_validation_images(home, data, tmp_path):
    small_train(data, "colours")
    get_registry(refresh=True)
    from zoo.exporters.onnx import export_onnx

    result = export_onnx(get_registry().model("colours"), tmp_path / "colours.onnx")
    assert result.report.passed
    checked = {Path(c.image).name for c in result.report.checks}
    assert checked and all("__" in name for name in checked)  # the bundle's photos
    onnx_report = evaluate(tmp_path / "colours.onnx", data)
    keras_report = evaluate("colours", data)
    assert onnx_report.metrics["top1"] == keras_report.metrics["top1"]


@pytest.mark.slow
def test_evaluate_measures_an_int8_exports_agreement_with_float32(home, data, tmp_path):
    small_train(data, "colours")
    spec = get_registry(refresh=True).model("colours")
    from zoo.exporters.onnx import export_onnx

    int8, fp32 = tmp_path / "colours.int8.onnx", tmp_path / "colours.onnx"
    export_onnx(spec, int8, zoo.ExportOptions(precision="int8"))
    export_onnx(spec, fp32)
    assert evaluate(fp32, data).fp32_agreement is None

    report = evaluate(int8, data)  # the reference is the model the card names, in Keras
    agreement = report.fp32_agreement
    assert agreement["measured"] and agreement["reference"] == "colours (keras, fp32)"
    quantised, keras = zoo.load(int8), zoo.load("colours")
    pixels = np.stack(
        [
            zoo.runtime.images.load_image(f, input_config((32, 32)))
            for f in sorted(data.rglob("*.jpg"))
        ]
    )
    same = quantised.probabilities(pixels).argmax(1) == keras.probabilities(pixels).argmax(1)
    assert agreement["images"] == len(pixels) == 30
    assert agreement["top1_agreement"] == pytest.approx(same.mean())
    assert len(agreement["top1_changed"]) == (~same).sum()
    assert agreement["reference_top1"] == evaluate("colours", data).metrics["top1"]

    by_file = evaluate(int8, data, reference=fp32).fp32_agreement
    assert by_file["reference"] == "colours (onnx, fp32)"
    assert by_file["top1_agreement"] == agreement["top1_agreement"]
    with pytest.raises(zoo.ZooError, match="is int8, not float32"):
        evaluate(int8, data, reference=int8)

    small_train(data, "colours", seed=1)  # the registered model changes, the files do not
    get_registry(refresh=True)
    assert evaluate(int8, data).fp32_agreement == {
        "measured": False,
        "reason": "colours's weights here are not the ones it was exported from",
    }
    with pytest.raises(zoo.ZooError, match="made from other weights than colours's"):
        evaluate(int8, data, reference="colours")
    assert evaluate(int8, data, reference=fp32).fp32_agreement["measured"]


def test_evaluate_says_why_agreement_was_not_measured(home):
    from zoo.training import int8_check

    class FakeInt8:
        name, precision, labels = "colours", "int8", ()
        card = type("Card", (), {"model": "gone", "weights": "imagenet"})()

    comparison = int8_check.fp32_comparison(FakeInt8(), None, "auto", 0)
    assert comparison.summary(np.zeros(0)) == {
        "measured": False,
        "reason": "unknown model 'gone'; see 'zoo list'; pass --reference FP32.onnx",
    }


@pytest.mark.slow
def test_package_installs_and_passes_check_plugin(home, data, tmp_path):
    # A built-in base: the installed package is checked in a process without the test's CNN.
    train("mobilenet", data, "colours", TrainSettings(epochs=2), weights="none")
    get_registry(refresh=True)
    from zoo.training.package import write_package

    written = write_package("colours", tmp_path / "pkg")
    # The package itself is built and installed by pip.
    python = fresh_venv_seeing_this_one(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", written["path"]], check=True)
    # A fresh zoo home: the model now comes from the installed package, not the bundle.
    env = {"ZOO_HOME": str(tmp_path / "other-home")}
    listed = run_zoo("list", "--json", env=env, python=python)
    assert "colours" in {row["name"] for row in json.loads(listed.stdout)}, listed.stderr
    checked = run_zoo("check-plugin", written["distribution"], env=env, python=python)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    photos = (
        "from pathlib import Path; from zoo.plugin.registry import get_registry; "
        "spec = get_registry().model('colours'); "
        "assert spec.calibration_images and spec.verification_images; "
        "assert all(Path(p).is_file() for p in spec.calibration_images + spec.verification_images)"
    )
    installed = subprocess.run(
        [python, "-c", photos], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert installed.returncode == 0, installed.stderr


@pytest.mark.real_weights
@pytest.mark.slow
def test_cifar_subset_with_real_mobilenet_beats_the_baseline(home, tmp_path, mobilenet_weights):
    source = SHARED_DATA / "cifar10-small"
    for label in ("airplane", "frog", "truck"):
        for path in sorted((source / label).iterdir())[:30]:
            target = tmp_path / "cifar" / label / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    report = train("mobilenet", tmp_path / "cifar", "cifar3", weights=mobilenet_weights)
    assert report.features["runtime"] == "onnxruntime"
    assert report.features["agreement_with_keras"] <= 1e-4
    val = report.metrics["val"]
    assert val["top1"] >= val["baseline_top1"] + 0.3


def _weights(folder: Path) -> Path:
    return folder / json.loads((folder / "card.json").read_text())["weights_file"]


# --- a bundle's card is checked, not trusted ---------------------------------------------


def _edit_card(folder: Path, change) -> None:
    card = json.loads((folder / "card.json").read_text())
    change(card)
    (folder / "card.json").write_text(json.dumps(card))


def _swap_first_two_labels(card):
    card["input"]["labels"][:2] = card["input"]["labels"][1::-1]


TAMPERING = {
    "labels": _swap_first_two_labels,
    "preprocess": lambda card: card["input"]["preprocess"].update(divisor=1.0),
    "size": lambda card: card["input"].update(size=[8000, 8000]),
    "interpolation": lambda card: card["input"].update(interpolation="nearest"),
    "base": lambda card: card["base"].update(model="mobilenet"),
}


@pytest.mark.parametrize("field", TAMPERING)
def test_a_tampered_card_is_refused_naming_the_field(home, data, field):
    result = small_train(data, "colours", interpolation="bilinear")
    _edit_card(result.path, TAMPERING[field])
    assert "colours" not in get_registry(refresh=True).models
    cli = run_zoo("predict", "colours", str(data / "red" / "00.jpg"), env={"ZOO_HOME": str(home)})
    assert cli.returncode == 1 and "unexpected" not in cli.stderr, cli.stderr
    warning = cli.stderr.splitlines()[0]
    assert f"its {field} changed since zoo train wrote it" in warning, cli.stderr


def test_a_first_format_card_still_loads_and_a_manifest_mismatch_is_refused(home, data):
    """Cards written before the integrity check: the input settings at the top level."""
    result = small_train(data, "colours")
    get_registry(refresh=True)
    expected = zoo.load("colours").predict(str(data / "red" / "00.jpg"))

    def first_format(card):
        config = card.pop("input")
        card.update(format_version=1, input_size=config["size"], labels=config["labels"])
        card.update(preprocess=config["preprocess"], interpolation=config["interpolation"])
        del card["integrity"]

    _edit_card(result.path, first_format)
    get_registry(refresh=True)
    assert zoo.load("colours").predict(str(data / "red" / "00.jpg")) == expected
    _edit_card(result.path, lambda card: card["labels"].reverse())
    from zoo.sources.bundle import BundleError, read_card

    with pytest.raises(BundleError, match="differ from the classes the model was trained on"):
        read_card(result.path)


def _first_format_of_size(size):
    def edit(card):
        config = card.pop("input")
        card.update(format_version=1, input_size=size, labels=config["labels"])
        card.update(preprocess=config["preprocess"], interpolation=config["interpolation"])
        del card["integrity"]

    return edit


def test_a_first_format_card_whose_size_is_not_its_graphs_is_refused_before_any_resize(home, data):
    """A first-format card has no integrity hash: its size is checked against the graph, and
    one larger than any classifier's is not read at all (resizing to it would exhaust memory
    before the graph is built)."""
    result = small_train(data, "colours")
    _edit_card(result.path, _first_format_of_size([100000, 100000]))
    with pytest.warns(PluginWarning, match="larger than any classifier's"):
        get_registry(refresh=True)
    assert "colours" not in get_registry().models
    _edit_card(result.path, lambda card: card.update(input_size=[8, 8]))
    get_registry(refresh=True)
    with pytest.raises(zoo.ZooError, match=r"declares input_size \(8, 8\), but its graph takes"):
        zoo.load("colours").predict(str(data / "red" / "00.jpg"))


def test_names_that_package_as_one_distribution_are_refused(home, data):
    small_train(data, "a.b")
    get_registry(refresh=True)
    with pytest.raises(zoo.ZooError, match=r"'a_b' and the model 'a\.b' would both be packaged"):
        small_train(data, "a_b")


def test_calibration_photos_keep_unique_names(home, tmp_path):
    """``a/b__0000.jpg`` and ``a__b/0000.jpg`` flatten to the same name."""
    rng = np.random.default_rng(3)
    root = tmp_path / "clash"
    for label, colour in {"a": (200, 40, 40), "a__b": (40, 40, 200)}.items():
        for i in range(6):
            make_image(root / label / f"{i:02d}.jpg", colour, rng)
    make_image(root / "a" / "b__00.jpg", COLOURS["red"], rng)
    make_image(root / "a__b" / "b__00.jpg", COLOURS["blue"], rng)
    result = small_train(root, "clash", val_split=0.01)
    spec = get_registry(refresh=True).model("clash")
    kept = [Path(p) for p in spec.calibration_images]
    flattened = [p.name.split("-", 1)[1] for p in kept]
    assert flattened.count("a__b__00.jpg") == 2, flattened  # both kept
    assert len({p.name for p in kept}) == len(kept) and all(p.is_file() for p in kept)
    assert len(kept) == sum(c["train"] for c in result.counts.values())


def test_a_trained_model_may_be_replaced_by_training_but_not_another_plugins(home, data):
    small_train(data, "colours")
    get_registry(refresh=True)
    small_train(data, "colours")  # a bundle of that name: replaced
    with pytest.raises(zoo.ZooError, match="plugin 'test-tinycnn' registers a model of that name"):
        small_train(data, "tinycnn")


def test_reports_are_records_that_read_back_and_read_their_first_format(home, data):
    result = small_train(data, "colours")
    assert TrainReport.read(result.path) == result
    first_format = json.loads((result.path / REPORT_FILE).read_text())
    for field in ("name", "path", "format"):  # reports of earlier versions had none of these
        del first_format[field]
    (result.path / REPORT_FILE).write_text(json.dumps(first_format))
    old = TrainReport.read(result.path)
    assert old.format == 1 and old.name == "colours" and old.history == result.history

    get_registry(refresh=True)
    evaluation = evaluate("colours", data)
    document = json.loads(json.dumps(evaluation.to_dict()))
    assert EvaluationReport.from_dict(document) == evaluation
    del document["format"]
    old = EvaluationReport.from_dict(document)
    assert old.format == 1 and old.metrics == evaluation.metrics and old.fp32_agreement is None


def test_ctrl_c_while_fine_tuning_stops_at_a_batch_end_as_an_interrupt(home, data):
    """The signal arrives while Keras's fit is running: it is raised as KeyboardInterrupt once
    fit has stopped, never from inside Keras, and nothing is saved."""
    interrupted_at = []

    def press_ctrl_c(record):
        if record.get("phase") == "finetune" and not interrupted_at:
            interrupted_at.append(record["epoch"])
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as raised:
        small_train(
            data, "tuned", mode="finetune", unfreeze=1, finetune_epochs=5, on_epoch=press_ctrl_c
        )
    assert interrupted_at == [16]  # the first fine-tuning epoch; the other four did not run
    assert Path(raised.traceback[-1].path).name == "interrupts.py"
    assert not (home / "bundles" / "tuned").exists()


def test_the_head_is_refit_on_every_labelled_image_for_the_chosen_epochs(home, data):
    kept = small_train(data, "first", refit=False, epochs=6)
    refit = small_train(data, "everything", epochs=6)
    assert kept.refit is None
    assert refit.refit == {"epochs": refit.best_epoch, "images": 30}
    assert refit.history == kept.history  # the same first head chose the epochs
    assert refit.metrics["val"] == kept.metrics["val"]  # scored by the head that did not see them
    first, everything = read_head(_weights(kept.path)), read_head(_weights(refit.path))
    assert not np.array_equal(first[0], everything[0])
