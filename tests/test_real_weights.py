"""Real ImageNet predictions, with the MobileNet weights in ../shared/data/weights (skipped
when absent). Compared with Keras's own top-5 recorded in ../shared/data/expected_top5.json."""

from __future__ import annotations

import json
import shutil

import pytest

import zoo

from .conftest import run_zoo

pytestmark = [pytest.mark.slow, pytest.mark.real_weights]

# Several animals in one photo: the top-1 flips between close classes with the resize filter.
AMBIGUOUS = {"tflite_support_cats_and_dogs.jpg"}


@pytest.fixture(scope="module")
def mobilenet(mobilenet_weights):
    return zoo.load("mobilenet", weights=mobilenet_weights)


@pytest.fixture
def expected(expected_top5, mobilenet_weights):
    return expected_top5["models"][mobilenet_weights.name]["top5"]


def test_bilinear_resize_reproduces_the_recorded_keras_top5(mobilenet, shared_images, expected):
    # expected_top5.json was made with load_img(..., interpolation="bilinear").
    for image in shared_images:
        top = mobilenet.predict(image, interpolation="bilinear")
        want = expected[image.name]
        assert [p.index for p in top] == [row[0] for row in want], image.name
        assert [p.class_id for p in top] == [row[1] for row in want], image.name
        for p, row in zip(top, want, strict=True):
            assert p.score == pytest.approx(row[3], abs=1e-3)


def test_default_resize_gets_the_top1_right(mobilenet, shared_images, expected):
    for image in shared_images:
        top = mobilenet.predict(image)
        want = expected[image.name][0][2]
        if image.name in AMBIGUOUS:
            assert want in {p.label for p in top}, image.name
        else:
            assert top[0].label == want, image.name


def test_cli_prints_macaw_first(mobilenet_weights, shared_images):
    parrot = next(p for p in shared_images if p.name == "coral_parrot.jpg")
    result = run_zoo("predict", "mobilenet", str(parrot), "--weights", str(mobilenet_weights))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(parrot))
    assert lines[1].startswith("  1. ('n01818515', 'macaw',")
    assert result.stderr == ""


def test_weights_in_the_keras_cache_are_found_offline(mobilenet_weights, shared_images, tmp_path):
    cache = tmp_path / "keras"
    (cache / "models").mkdir(parents=True)
    shutil.copy(mobilenet_weights, cache / "models" / "mobilenet_1_0_224_tf.h5")
    burger = next(p for p in shared_images if p.name == "tflite_support_burger.jpg")
    result = run_zoo("predict", "mobilenet", str(burger), "--json", env={"KERAS_HOME": str(cache)})
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["top"][0]["label"] == "cheeseburger"


def test_the_onnx_export_predicts_like_keras(mobilenet, mobilenet_weights, shared_images, tmp_path):
    destination = tmp_path / "mobilenet.onnx"
    exported = run_zoo(
        "export", "mobilenet", "--weights", str(mobilenet_weights), "-o", str(destination)
    )
    assert exported.returncode == 0, exported.stderr
    images = [str(p) for p in shared_images]
    result = run_zoo("predict", str(destination), *images, "--json", "--provider", "cpu")
    assert result.returncode == 0, result.stderr
    onnx_records = json.loads(result.stdout)
    for image, record in zip(shared_images, onnx_records, strict=True):
        keras_top = mobilenet.predict(image)
        assert [p["index"] for p in record["top"]] == [p.index for p in keras_top], image.name
        for p, q in zip(record["top"], keras_top, strict=True):
            assert p["score"] == pytest.approx(q.score, abs=1e-5)


def test_the_bundled_samples_are_recognised(mobilenet):
    from zoo.runtime.samples import sample_images

    expected = {
        "cat.jpg": "Egyptian_cat",
        "chickadee.jpg": "chickadee",
        "dragonfly.jpg": "dragonfly",
        "grace_hopper.jpg": "military_uniform",
        "parrot.jpg": "macaw",
        "sunflower.jpg": "daisy",
    }
    assert {path.name: mobilenet.predict(path)[0].label for path in sample_images()} == expected
