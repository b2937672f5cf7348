"""Keras files in the forms Keras 3 refuses (``legacy_keras_files``: each written here, small and
seeded): zoo loads each with the rewrites it names, with the file's own weights (the outputs
are the original model's), exports it verified through its emitter, and refuses in one line
what no rewrite can load, naming the layer and the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zoo.sources import keras_rewrites
from zoo.sources.keras_file import KerasFile, KerasFileError, KerasFileOptions, read_config

from . import legacy_keras_files as legacy
from .conftest import run_zoo

pytestmark = pytest.mark.tensorflow  # every test here builds Keras models


@pytest.fixture(scope="module")
def forms(tmp_path_factory) -> tuple[Path, dict]:
    """Every form written once; the outputs of the model each was made from."""
    folder = tmp_path_factory.mktemp("legacy")
    outputs = {}
    for name, form in legacy.FORMS.items():
        model = form.make(folder / form.file)
        outputs[name] = np.asarray(model(legacy.inputs(), training=False))
    for file, (make, _) in legacy.REFUSED.items():
        make(folder / file)
    return folder, outputs


@pytest.mark.parametrize("name", list(legacy.FORMS))
def test_each_form_loads_with_its_rewrites_and_its_own_weights(forms, name):
    folder, outputs = forms
    form = legacy.FORMS[name]
    loaded = KerasFile.open(folder / form.file, KerasFileOptions())
    assert loaded.rewrites == form.rewrites
    ours = np.asarray(loaded.model(legacy.inputs(), training=False))
    np.testing.assert_allclose(ours, outputs[name], rtol=1e-5, atol=1e-6)
    assert loaded.model.inputs[0].shape[0] is None  # any batch, a fixed one in the file or not


@pytest.mark.parametrize("file", list(legacy.REFUSED))
def test_what_no_rewrite_loads_is_one_line_naming_the_layer_and_the_key(forms, file):
    folder, _ = forms
    with pytest.raises(KerasFileError) as error:
        KerasFile.open(folder / file, KerasFileOptions())
    message = str(error.value)
    assert legacy.REFUSED[file][1] in message and "\n" not in message


def test_the_rewrites_leave_the_file_alone(forms):
    folder, _ = forms
    path = folder / legacy.FORMS["keras20"].file
    before = path.read_bytes()
    KerasFile.open(path, KerasFileOptions())
    assert path.read_bytes() == before


def test_a_rewrite_only_matches_its_form(forms):
    """Each rewrite finds nothing to change in a config Keras 3 wrote itself."""
    folder, _ = forms
    config = read_config(folder / legacy.FORMS["hdf5_keras"].file)
    for rewrite in (*keras_rewrites.REWRITES, keras_rewrites.FIXED_BATCH):
        assert rewrite.apply(json.loads(json.dumps(config))) == [], rewrite.name


def test_an_hdf5_file_named_keras_is_read_as_hdf5(forms):
    folder, _ = forms
    path = folder / legacy.FORMS["hdf5_keras"].file
    assert path.read_bytes()[:4] == b"\x89HDF"
    assert read_config(path)["class_name"] == "Sequential"


def test_export_names_the_rewrites_and_verifies_through_the_emitter(forms, tmp_path):
    folder, _ = forms
    (folder / "labels.txt").write_text("0 cheetah\n1 jaguar\n")  # Teachable Machine's own
    output = tmp_path / "teachable.onnx"
    result = run_zoo(
        "export", str(folder / "keras_model.h5"), "--preprocess", "tf", "-o", str(output),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verified"] and document["converter"]["name"] == "emitter"
    assert document["keras_rewrites"] == ["functional-single-io", "depthwise-groups"]
    assert "after zoo's rewrites functional-single-io" in result.stderr
    assert "depthwise-groups" in result.stderr
    assert f"labels from {folder / 'labels.txt'} (2 classes)" in result.stderr
    predicted = run_zoo("predict", str(output), str(legacy_photo(tmp_path)), "--json")
    assert predicted.returncode == 0, predicted.stderr
    labels = {entry["label"] for entry in json.loads(predicted.stdout)[0]["top"]}
    assert labels == {"cheetah", "jaguar"}


def legacy_photo(folder: Path) -> Path:
    from PIL import Image

    path = folder / "photo.png"
    Image.fromarray(legacy.inputs(1)[0].astype(np.uint8)).save(path)
    return path
