"""A Keras 2 SavedModel folder (made here with tf_keras, seeded and small) as a model: read as
the Keras model it holds (converted once to a legacy .h5 in zoo's cache), the outputs of the
model tf_keras saved, exported verified through the emitter. SavedModels without Keras metadata
are in test_serving_signatures.py. Skipped where tf_keras (the ``savedmodel`` extra) is
absent."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.cli.main import main

MAKE = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras
folder, outputs = sys.argv[1:3]
tf_keras.utils.set_random_seed(0)
model = tf_keras.Sequential([
    tf_keras.Input((16, 16, 3)),
    tf_keras.layers.Rescaling(1 / 255),
    tf_keras.layers.Conv2D(4, 3, activation="relu"),
    tf_keras.layers.BatchNormalization(),
    tf_keras.layers.GlobalAveragePooling2D(),
    tf_keras.layers.Dense(3, activation="softmax"),
])
model.save(folder)  # a folder: tf_keras's SavedModel format
x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
np.savez(outputs, x=x, y=model(x, training=False).numpy())
"""


pytestmark = [
    pytest.mark.tensorflow,  # every test here builds Keras models
    pytest.mark.skipif(
        importlib.util.find_spec("tf_keras") is None, reason="needs tf_keras (Keras 2)"
    ),
    pytest.mark.usefixtures("fresh_home"),
]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("saved")
    paths = (folder / "my_model", folder / "outputs.npz")
    made = subprocess.run(
        [sys.executable, "-c", MAKE, *map(str, paths)], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    return paths


def test_read_as_the_keras_model_it_holds(made):
    from zoo.sources.keras_file import KerasFile, KerasFileOptions
    from zoo.sources.saved_model import as_keras_file

    folder, outputs = made
    h5 = as_keras_file(folder)
    assert as_keras_file(folder) == h5  # converted once
    saved = np.load(outputs)
    model = KerasFile.open(h5, KerasFileOptions()).model
    ours = np.asarray(model(saved["x"], training=False))
    np.testing.assert_allclose(ours, saved["y"], rtol=1e-5, atol=1e-6)


def test_exports_verified_and_predicts_as_its_export(made, capsys, tmp_path):
    folder, _ = made
    output = tmp_path / "my_model.onnx"
    assert main(["export", str(folder), "-o", str(output), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] and result["converter"]["name"] == "emitter"
    assert result["model"] == "my_model"
    photo = Path(__file__).resolve().parent.parent / "core" / "data" / "samples" / "cat.jpg"
    assert main(["predict", str(folder), str(photo), "--json"]) == 0
    on_keras = json.loads(capsys.readouterr().out)[0]["top"]
    assert main(["predict", str(output), str(photo), "--json"]) == 0
    on_onnx = json.loads(capsys.readouterr().out)[0]["top"]
    assert [e["label"] for e in on_keras] == [e["label"] for e in on_onnx]


def test_without_tf_keras_it_runs_as_its_serving_signature(made, capsys, tmp_path, monkeypatch):
    """Where tf_keras is not installed, a Keras 2 SavedModel is what any SavedModel is: its
    serving signature, exported through tf2onnx and verified against it, with a line saying
    how to have it read as a Keras model instead."""
    from zoo.sources import saved_model

    monkeypatch.setattr(saved_model, "reads_keras_metadata", lambda: False)
    folder, _ = made
    output = tmp_path / "my_model.onnx"
    assert main(["export", str(folder), "-o", str(output)]) != 0
    refused = capsys.readouterr().err
    assert "does not say how its pixels are made" in refused and "zoo[savedmodel]" in refused
    assert refused.count("\n") == 1 and not output.exists()
    assert main(["export", str(folder), "--preprocess", "none", "-o", str(output), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["verified"] and result["converter"]["name"] == "tf2onnx"
    assert "my_model: a Keras 2 SavedModel, run as its signature; pip install" in captured.err
    assert not (Path(os.environ["ZOO_HOME"]) / "saved-models").exists()  # no .h5 made
