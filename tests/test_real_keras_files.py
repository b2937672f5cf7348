"""Every real Keras file in ``../shared/data/real-keras-files`` (``real_keras_files``; skipped
when absent): exported verified through zoo's emitter with only the options its repository
implies (its ``labels.txt`` found beside it), and ``zoo predict FILE`` and ``zoo predict
OUT.onnx`` giving, on its repository's sample photos, the classes its repository's code gives
(Keras, with that code's preprocessing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from . import real_keras_files as real

SAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "samples"

pytestmark = [
    pytest.mark.tensorflow,  # every test here loads Keras files (and so is slow)
    pytest.mark.skipif(not real.ROOT.is_dir(), reason=f"{real.ROOT} is absent"),
    pytest.mark.usefixtures("fresh_home"),
]


def best(out: str) -> list[str]:
    return [record["top"][0]["label"] for record in json.loads(out)]


def repository_classes(file: real.RealFile, photos: list[Path]) -> list[str]:
    """What the repository's code answers: Keras (the file as zoo loads it, rewritten where
    Keras refuses it as saved) on the photos preprocessed as that code does."""
    from zoo.model.labels import read_label_file
    from zoo.sources.keras_file import KerasFile, KerasFileOptions
    from zoo.sources.model_file import teachable_machine_labels

    path = real.ROOT / file.path
    model = KerasFile.open(path, KerasFileOptions()).model
    shape = tuple(model.inputs[0].shape[1:])
    batch = np.stack([file.repository(photo, shape) for photo in photos])
    scores = np.asarray(model(batch, training=False))
    labels = teachable_machine_labels(read_label_file(path.parent / "labels.txt"))
    if scores.shape[1] == 1:  # one sigmoid: class 1 from 0.5, as the repositories' code says
        return [labels[int(p >= 0.5)] for p in scores[:, 0]]
    return [labels[i] for i in scores.argmax(axis=1)]


@pytest.mark.parametrize("name", list(real.FILES))
def test_exports_verified_and_predicts_its_repositorys_classes(zoo_here, name, capsys, tmp_path):
    file = real.FILES[name]
    path = real.ROOT / file.path
    output = tmp_path / f"{name}.onnx"
    code, out, err = zoo_here("export", path, *file.options, "-o", output, "--json")
    assert code == 0, err
    exported = json.loads(out)
    assert exported["verified"] and exported["converter"]["name"] == "emitter"
    assert f"labels from {path.parent / 'labels.txt'}" in err
    photos = real.samples(file) or sorted(SAMPLES.glob("*.jpg"))[:3]
    resize = ("--interpolation", file.interpolation)
    code, on_keras, err = zoo_here("predict", path, *photos, *file.options, *resize, "--json")
    assert code == 0, err
    code, on_onnx, err = zoo_here("predict", output, *photos, *resize, "--json")
    assert code == 0, err
    assert best(on_onnx) == best(on_keras)
    if real.samples(file):
        assert best(on_keras) == repository_classes(file, photos)
