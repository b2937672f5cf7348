"""A user's own Keras file as the model of every command: exported through zoo's emitter (or
its tf2onnx fallback, named) and verified, predicting as Keras does, and each file zoo cannot
take refused in one line with nothing left behind. The files are small, seeded, random-init
and made here (``keras_files``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zoo.keras_file import custom_classes, lambda_layers, read_config

from . import keras_files
from .conftest import run_zoo

SAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "samples"


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> Path:
    """Every file of ``keras_files``, made once, with a labels file per class count and the
    custom layer's module beside them."""
    folder = tmp_path_factory.mktemp("keras-files")
    for kind in keras_files.GOOD:
        keras_files.make(kind, folder)
    for name in keras_files.BAD:
        keras_files.make_bad(name, folder)
    for count in {file.classes for file in keras_files.GOOD.values()}:
        labels = [f"thing{i}" for i in range(count)]
        (folder / f"labels{count}.txt").write_text("\n".join(labels) + "\n")
        (folder / f"labels{count}.json").write_text(json.dumps(labels))
    return folder


def zoo_in(folder: Path, *args: str):
    """``zoo ARGS`` run in ``folder`` (where the custom layer's module is)."""
    return run_zoo(*args, cwd=folder)


def top5(result) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    return [[entry["label"] for entry in record["top"]] for record in json.loads(result.stdout)]


@pytest.mark.parametrize("kind", ["augmented", "legacy", "transfer", "logits"])
def test_exports_through_the_emitter_verified_and_predicts_as_keras(files, tmp_path, kind):
    file = keras_files.GOOD[kind]
    labels = str(files / f"labels{file.classes}.txt")
    output = tmp_path / "model.onnx"
    exported = zoo_in(
        files, "export", file.name, "--onnx", "--labels", labels, *file.options,
        "-o", str(output), "--json",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["converter"] == {"name": "emitter", "unsupported_layers": []}
    assert result["verified"] and result["max_relative_diff"] < 1e-4
    assert output.is_file()
    photos = [str(p) for p in sorted(SAMPLES.glob("*.jpg"))[:3]]
    on_keras = zoo_in(files, "predict", file.name, *photos, "--labels", labels, *file.options,
                      "--json")  # fmt: skip
    on_onnx = zoo_in(files, "predict", str(output), *photos, "--json")
    assert top5(on_keras) == top5(on_onnx)
    assert top5(on_keras)[0][0].startswith("thing")


def test_the_summary_names_the_converter(files, tmp_path):
    output = tmp_path / "legacy.onnx"
    result = zoo_in(
        files, "export", "legacy_sequential.h5", "--onnx", "--preprocess", "tf", "-o", str(output)
    )
    assert result.returncode == 0, result.stderr
    assert "converted by zoo's emitter" in result.stdout
    assert "no --labels, so its 5 classes are called class_0..class_4" in result.stderr


def test_a_custom_layer_needs_its_module_and_then_exports_through_tf2onnx(files, tmp_path):
    output = tmp_path / "custom.onnx"
    refused = zoo_in(files, "export", "custom_layer.keras", "--onnx", "-o", str(output))
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("zoo: ")
    assert "'acme>Gain'" in refused.stderr and "--custom-objects" in refused.stderr
    assert not output.exists()
    exported = zoo_in(
        files, "export", "custom_layer.keras", "--onnx", "-o", str(output), "--json",
        "--labels", str(files / "labels3.json"), "--custom-objects", keras_files.CUSTOM_MODULE,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["converter"] == {"name": "tf2onnx", "unsupported_layers": ["Gain"]}
    assert result["verified"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("folder", "a folder, not a model file"),
        ("truncated.keras", "not a Keras model file zoo can read"),
        ("lambda_layer.keras", "Lambda layer 'scale_pixels'"),
        ("custom_layer.keras", "'acme>Gain'"),
        ("two_inputs.keras", "takes 2 inputs"),
        ("not_an_image.keras", "not an image"),
        ("regression.keras", "not a vector of class scores"),
        ("wrong_labels", "has 3 labels, but augmented_cnn.keras outputs 4 class scores"),
        ("legacy_sequential.h5", "pass --preprocess, one of caffe, none"),
    ],
)
def test_a_file_zoo_cannot_take_is_one_line_and_leaves_nothing(files, tmp_path, case, expected):
    work = tmp_path / "work"
    shutil.copytree(files, work)
    (work / "folder").mkdir()
    whole = (work / "augmented_cnn.keras").read_bytes()
    (work / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    args = [case]
    if case == "wrong_labels":
        args = ["augmented_cnn.keras", "--labels", "labels3.txt"]
    before = set(work.iterdir())
    for command in (["export", *args, "--onnx", "-o", "out.onnx"], ["predict", *args, "x.jpg"]):
        result = zoo_in(work, *command)
        assert result.returncode != 0
        assert result.stderr.startswith("zoo: ") and result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr
        assert set(work.iterdir()) == before


def test_lambda_layers_load_only_when_allowed_with_a_warning(files, tmp_path):
    output = tmp_path / "lambda.onnx"
    result = zoo_in(
        files, "export", "lambda_layer.keras", "--allow-lambda", "--preprocess", "none",
        "-o", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "loading runs the code in Lambda layer 'scale_pixels' (--allow-lambda)" in result.stderr
    assert "verified against Keras" in result.stdout


def test_the_file_is_read_without_tensorflow(files):
    config = read_config(files / "custom_layer.keras")
    assert custom_classes(config) == {"acme>Gain": "gain"}
    assert lambda_layers(read_config(files / "lambda_layer.keras")) == ["scale_pixels"]
    assert lambda_layers(read_config(files / "legacy_sequential.h5")) == []


def test_options_that_do_not_fit_the_file_are_one_line(files):
    cases = {
        ("--input-size", "64x64"): "takes 32x32; the option is for files whose input takes any",
        ("--preprocess", "nope"): "--preprocess 'nope': no such preprocessor",
        ("--name", "Bad/Name"): "cannot name the model 'Bad/Name'",
    }
    for options, expected in cases.items():
        result = zoo_in(files, "predict", "augmented_cnn.keras", "x.jpg", *options)
        assert result.returncode != 0 and expected in result.stderr, result.stderr
