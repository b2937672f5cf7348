"""A user's own Keras file as the model of every command: exported through zoo's emitter (or
its tf2onnx fallback, named) and verified, predicting as Keras does, and each file zoo cannot
take refused in one line with nothing left behind. The files are small, seeded, random-init
and made here (``keras_files``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from zoo.sources.keras_file import custom_classes, lambda_layers, read_config

from . import keras_files
from .conftest import fresh_venv_seeing_this_one, modules_imported, run_zoo

SAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "samples"


pytestmark = pytest.mark.tensorflow  # every test here builds Keras models


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
        files, "export", file.name, "--labels", labels, *file.options,
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
        files, "export", "legacy_sequential.h5", "--preprocess", "tf", "-o", str(output)
    )
    assert result.returncode == 0, result.stderr
    assert "converted by zoo's emitter" in result.stdout
    assert "no --labels, so its 5 classes are called class_0..class_4" in result.stderr


def test_a_custom_layer_needs_its_module_and_then_exports_through_tf2onnx(files, tmp_path):
    output = tmp_path / "custom.onnx"
    refused = zoo_in(files, "export", "custom_layer.keras", "-o", str(output))
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("zoo: ")
    assert "'acme>Gain'" in refused.stderr and "--custom-objects" in refused.stderr
    assert not output.exists()
    exported = zoo_in(
        files, "export", "custom_layer.keras", "-o", str(output), "--json",
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
    for command in (["export", *args, "-o", "out.onnx"], ["predict", *args, "x.jpg"]):
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


# --- every command that takes a model ----------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_BUNDLES", raising=False)
    return tmp_path / "home"


@pytest.fixture
def colours(tmp_path) -> Path:
    """Three colour classes, 8 noisy JPEGs each: a folder per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in {
        "red": (200, 40, 40),
        "green": (40, 180, 40),
        "blue": (40, 40, 200),
    }.items():
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (40, 40, 3)), 0, 255)
            path = tmp_path / "colours" / label / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(path)
    return tmp_path / "colours"


def test_verify_passes_and_notices_a_changed_file(files, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(files / "logits_head.keras", work / "model.keras")
    exported = zoo_in(work, "export", "model.keras", "--preprocess", "torch", "-o", "model.onnx")
    assert exported.returncode == 0, exported.stderr
    verified = zoo_in(work, "verify", "model.keras", "model.onnx", "--preprocess", "torch")
    assert verified.returncode == 0 and "verified against Keras" in verified.stdout
    shutil.copy(files / "augmented_cnn.keras", work / "model.keras")  # another model, same name
    changed = zoo_in(work, "verify", "model.keras", "model.onnx", "--preprocess", "torch")
    assert changed.returncode != 0
    assert "was exported from other weights (sha256" in changed.stderr


def test_the_export_cache_is_keyed_by_the_files_sha256(files, tmp_path, home):
    from zoo.plugin.registry import get_registry
    from zoo.sources.export_cache import cached_export_path
    from zoo.sources.keras_file import KerasFileOptions
    from zoo.sources.model_file import keras_file_spec
    from zoo.sources.weights import resolve_weights

    path = tmp_path / "model.keras"
    keys = []
    for source in ("augmented_cnn.keras", "transfer.keras"):
        shutil.copy(files / source, path)
        spec = keras_file_spec(path, KerasFileOptions(), get_registry().preprocessors)
        weights = resolve_weights(spec, "imagenet")
        assert weights == path.resolve()  # the file itself, not a copy in Keras's cache
        keys.append(cached_export_path(spec, weights))
    assert keys[0] != keys[1]


def test_compare_bench_and_evaluate_take_a_file(files, colours, home):
    photo = str(next((colours / "red").iterdir()))
    labels = files / "colours.txt"
    labels.write_text("red\ngreen\nblue\nother\n")
    compared = zoo_in(files, "compare", photo, "--models", "augmented_cnn.keras", "--json")
    assert compared.returncode == 0, compared.stderr  # as the file is: class_0, class_1...
    [record] = json.loads(compared.stdout)
    assert record["model"] == "augmented_cnn" and record["top"][0]["label"].startswith("class_")
    benched = zoo_in(
        files, "bench", "augmented_cnn.keras", "--batch-sizes", "1", "--runs", "1", "--json"
    )
    assert benched.returncode == 0, benched.stderr
    assert {r["backend"] for r in json.loads(benched.stdout)["results"]} == {"keras", "onnx"}
    evaluated = zoo_in(
        files, "evaluate", "augmented_cnn.keras", str(colours), "--labels", str(labels), "--json"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["model"] == "augmented_cnn"


def test_serve_exports_a_file_and_answers(files, tmp_path, home):
    from .serving import ServeProcess

    photo = SAMPLES / "cat.jpg"
    labels = files / "labels4.txt"
    kept = zoo_in(files, "import", "augmented_cnn.keras", "--labels", str(labels))
    assert kept.returncode == 0, kept.stderr  # serve takes several models: a file gets its
    with ServeProcess("augmented_cnn", log=tmp_path / "log") as server:  # labels by import
        status, _, body = server.post_image("/v1/models/augmented_cnn:predict", photo.read_bytes())
    assert status == 200, body
    assert body[0]["model"] == "augmented_cnn" and body[0]["top"][0]["label"].startswith("thing")


def test_train_on_a_file_then_use_the_trained_model(files, colours, home):
    trained = zoo_in(
        files, "train", "augmented_cnn.keras", str(colours), "-o", "tinted", "--epochs", "3"
    )
    assert trained.returncode == 0, trained.stderr
    card = json.loads((home / "bundles" / "tinted" / "card.json").read_text())
    assert card["base"]["model"] == str((files / "augmented_cnn.keras").resolve())
    photo = str(next((colours / "red").iterdir()))
    predicted = zoo_in(files, "predict", "tinted", photo, "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert {e["label"] for e in json.loads(predicted.stdout)[0]["top"]} == {"red", "green", "blue"}


# --- keeping a file: zoo import ----------------------------------------------------------


def test_an_imported_file_is_listed_without_tensorflow_and_predicts(files, home, tmp_path):
    labels = str(files / "labels4.txt")
    kept = zoo_in(
        files, "import", "augmented_cnn.keras", "--name", "tinted", "--labels", labels, "--json"
    )
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["path"] == str(home / "bundles" / "tinted")
    listed, imported = modules_imported(
        "list", "--json", among=("tensorflow", "keras"), quiet=False
    )
    assert imported == [], imported
    assert "tinted" in {row["name"] for row in json.loads(listed.stdout)}
    photo = str(SAMPLES / "cat.jpg")
    on_file = zoo_in(files, "predict", "augmented_cnn.keras", photo, "--labels", labels, "--json")
    on_kept = zoo_in(tmp_path, "predict", "tinted", photo, "--json")
    assert top5(on_file) == top5(on_kept)
    again = zoo_in(files, "import", "augmented_cnn.keras", "--name", "tinted", "--labels", labels)
    assert again.returncode == 0, again.stderr  # an imported model is replaced by importing


def test_an_imported_model_whose_file_changed_is_refused(files, home, tmp_path):
    kept = zoo_in(files, "import", "augmented_cnn.keras", "--name", "tinted")
    assert kept.returncode == 0, kept.stderr
    shutil.copy(files / "transfer.keras", home / "bundles" / "tinted" / "model.keras")
    result = zoo_in(tmp_path, "predict", "tinted", str(SAMPLES / "cat.jpg"))
    assert result.returncode != 0 and "does not match the sha256" in result.stderr


@pytest.mark.slow
def test_an_imported_file_packages_installs_and_passes_check_plugin(files, home, tmp_path):
    kept = zoo_in(
        files, "import", "logits_head.keras", "--name", "hues", "--preprocess", "torch",
        "--labels", str(files / "labels6.json"),
    )  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    packaged = zoo_in(files, "package", "hues", "-o", str(tmp_path / "pkg"), "--json")
    assert packaged.returncode == 0, packaged.stderr
    written = json.loads(packaged.stdout)
    python = fresh_venv_seeing_this_one(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", written["path"]], check=True)
    env = {"ZOO_HOME": str(tmp_path / "other-home")}  # the model now comes from the package
    listed = run_zoo("list", "--json", env=env, python=python)
    assert "hues" in {row["name"] for row in json.loads(listed.stdout)}, listed.stderr
    checked = run_zoo("check-plugin", written["distribution"], env=env, python=python)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_zoo_load_takes_a_file_and_the_options_the_cli_has(files):
    import zoo
    from zoo.plugin.registry import get_registry
    from zoo.sources.keras_file import KerasFileOptions

    try:
        options = KerasFileOptions(preprocess="tf", name="seq")
        model = zoo.load(str(files / "legacy_sequential.h5"), keras_file=options)
        predictions = model.predict(SAMPLES / "cat.jpg")
        assert model.name == "seq" and len(predictions) == 5
    finally:
        get_registry(refresh=True)


def test_a_graph_that_scales_its_own_pixels_needs_no_preprocess(tmp_path):
    import keras

    from zoo.sources.keras_file import describe_classifier

    inputs = keras.Input((48, 48, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(inputs)  # x / 127.5 - 1, as ops
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    scaled = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    assert describe_classifier(scaled, tmp_path).preprocesses_itself
    plain = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    described = describe_classifier(plain, tmp_path)
    assert not described.preprocesses_itself and described.output == "logits"
