"""Keras files as people train them from scratch (``keras_file_kinds``, made here, seeded):
grayscale and channel-less inputs, one-sigmoid binary heads, x/255 and stated preprocessing,
their ``labels.txt`` beside them; through predict, evaluate, export (with the preprocessing
embedded) and serve, as RGB softmax files go. And what zoo refuses, each in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from . import keras_file_kinds as kinds

pytestmark = [
    pytest.mark.tensorflow,  # every test here builds Keras models
    pytest.mark.usefixtures("fresh_home"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kinds")
    for name, make in kinds.KINDS.items():
        make(folder / name)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Colour photos, not square, and one grayscale PNG."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    paths = []
    for i, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        pixels = np.clip(np.array(colour) + rng.normal(0, 50, (30, 40, 3)), 0, 255)
        paths.append(folder / f"photo{i}.png")
        Image.fromarray(pixels.astype(np.uint8)).save(paths[-1])
    paths.append(folder / "gray.png")
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), "L").save(paths[-1])
    return paths


def top(out: str) -> list[list[str]]:
    return [[entry["label"] for entry in record["top"]] for record in json.loads(out)]


def scores(out: str) -> np.ndarray:
    records = json.loads(out)
    return np.array([[e["score"] for e in sorted(r["top"], key=lambda e: e["label"])]
                     for r in records])  # fmt: skip


def keras_scores(path: Path, photos: list[Path], divisor: float = 255) -> np.ndarray:
    """The file's own outputs in Keras, on the photos made as Keras's ``load_img`` makes them
    (grayscale for a grayscale model), divided by ``divisor``."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    gray = len(shape) == 2 or shape[-1] == 1
    mode = "grayscale" if gray else "rgb"
    arrays = [
        keras.utils.img_to_array(keras.utils.load_img(p, color_mode=mode, target_size=shape[:2]))
        for p in photos
    ]
    batch = np.stack(arrays).reshape(len(photos), *shape) / divisor
    return np.asarray(model(batch, training=False))


def test_grayscale_predicts_as_keras_with_load_img_grayscale(zoo_here, files, photos, capsys):
    (files / "labels3.txt").write_text("a\nb\nc\n")
    path = files / "grayscale.keras"
    code, out, err = zoo_here("predict", path, *photos, "--preprocess", "unit",
                         "--labels", files / "labels3.txt", "--json", "--top", "3")  # fmt: skip
    assert code == 0, err
    expected = keras_scores(path, photos)
    np.testing.assert_allclose(scores(out), expected, atol=1e-5)


def test_channel_less_input_predicts_and_exports(zoo_here, files, photos, capsys, tmp_path):
    path = files / "channel_less.keras"
    code, out, err = zoo_here("predict", path, *photos, "--preprocess", "unit", "--json",
                         "--top", "4")  # fmt: skip
    assert code == 0, err
    logits = keras_scores(path, photos)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores(out), softmax, atol=1e-5)
    output = tmp_path / "flat.onnx"
    code, out, err = zoo_here("export", path, "--preprocess", "unit", "-o", output, "--json")
    assert code == 0, err
    assert json.loads(out)["verified"] and json.loads(out)["converter"]["name"] == "emitter"


def test_grayscale_export_with_embedded_preprocessing_takes_photos(
    zoo_here, files, photos, capsys, tmp_path
):
    path = files / "grayscale.keras"
    output = tmp_path / "gray.onnx"
    code, out, err = zoo_here("export", path, "--preprocess", "unit", "--embed-preprocessing",
                         "-o", output, "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["verified"] and json.loads(out)["embedded_preprocessing"]
    card = _card(output)
    assert card.input.preprocess.channel_order == "L" and card.input_dtype == "uint8"
    code, on_onnx, err = zoo_here("predict", output, *photos, "--json", "--top", "3")
    assert code == 0, err
    code, on_keras, err = zoo_here("predict", path, *photos, "--preprocess", "unit",
                              "--json", "--top", "3")  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(scores(on_onnx), scores(on_keras), atol=1e-5)


def _card(path: Path):
    import onnx

    from zoo.runtime.onnx_file import card_from_metadata

    proto = onnx.load(path, load_external_data=False)
    return card_from_metadata({p.key: p.value for p in proto.metadata_props}, path)


def test_a_sigmoid_head_is_two_classes_with_its_labels_beside(
    zoo_here, files, photos, capsys, tmp_path
):
    folder = tmp_path / "catdog"
    folder.mkdir()
    path = folder / "catdog.keras"
    path.write_bytes((files / "sigmoid.keras").read_bytes())
    (folder / "labels.txt").write_text("cats\ndogs\n")
    code, out, err = zoo_here("predict", path, *photos, "--json", "--top", "2")
    assert code == 0, err
    assert f"labels from {folder / 'labels.txt'} (2 classes)" in err
    p = keras_scores(path, photos, divisor=1)[:, 0]
    np.testing.assert_allclose(scores(out), np.stack([1 - p, p], axis=1), atol=1e-6)
    assert {label for row in top(out) for label in row} == {"cats", "dogs"}
    output = tmp_path / "catdog.onnx"
    code, out, err = zoo_here("export", path, "-o", output, "--json")
    assert code == 0, err
    assert json.loads(out)["verified"] and json.loads(out)["converter"]["name"] == "emitter"
    code, on_onnx, err = zoo_here("predict", output, *photos, "--json", "--top", "2")
    np.testing.assert_allclose(scores(on_onnx), np.stack([1 - p, p], axis=1), atol=1e-5)


def test_labels_beside_with_the_wrong_count_are_not_used(zoo_here, files, photos, capsys, tmp_path):
    folder = tmp_path / "wrong"
    folder.mkdir()
    path = folder / "model.keras"
    path.write_bytes((files / "unit_rgb.keras").read_bytes())
    (folder / "labels.txt").write_text("only\ntwo\n")
    code, out, err = zoo_here("predict", path, photos[0], "--preprocess", "unit", "--json")
    assert code == 0, err
    assert (
        f"{folder / 'labels.txt'} not used: it has 2 labels, but model.keras outputs 3 class "
        "scores" in err
    )
    assert top(out)[0][0].startswith("class_")


def test_stated_preprocessing_is_what_the_model_gets(zoo_here, files, photos, capsys):
    path = files / "unit_rgb.keras"
    code, out, err = zoo_here("predict", path, *photos, "--preprocess", "scale=1/255",
                         "--json", "--top", "3")  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(scores(out), keras_scores(path, photos), atol=1e-5)
    code, as_unit, err = zoo_here("predict", path, *photos, "--preprocess", "unit", "--json",
                             "--top", "3")  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(scores(out), scores(as_unit), atol=1e-7)


def test_evaluate_a_grayscale_model_on_a_labelled_grayscale_folder(
    zoo_here, files, capsys, tmp_path
):
    rng = np.random.default_rng(5)
    for label in ("a", "b", "c"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (20, 20), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(tmp_path / "data" / label / f"{i}.png")
    (files / "abc.txt").write_text("a\nb\nc\n")
    code, out, err = zoo_here("evaluate", files / "grayscale.keras", tmp_path / "data",
                         "--preprocess", "unit", "--labels", files / "abc.txt",
                         "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["images"] == 6


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("multi_label.keras", ("--preprocess", "unit"), "3 sigmoid units, a multi-label model"),
        ("two_channels.keras", ("--preprocess", "unit"), "its input has 2 channels"),
        ("four_channels.keras", ("--preprocess", "unit"), "its input has 4 channels"),
        ("grayscale.keras", ("--preprocess", "scale=1/255,bgr"), "gives BGR, but grayscale.keras"),
        (
            "grayscale.keras",
            ("--preprocess", "torch"),
            "gives a mean or std per channel, but grayscale.keras takes one channel",
        ),
        ("unit_rgb.keras", ("--preprocess", "scale=1/0"), "--preprocess 'scale=1/0': scale"),
    ],
)
def test_refused_in_one_line(zoo_here, files, photos, capsys, tmp_path, name, options, message):
    output = tmp_path / "out.onnx"
    code, _, err = zoo_here("export", files / name, *options, "-o", output)
    assert code != 0 and message in err, err
    assert err.count("\n") == 1 and "unexpected error" not in err
    assert not output.exists() and list(tmp_path.iterdir()) == []
