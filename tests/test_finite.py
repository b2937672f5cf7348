"""NaN and infinity are never an answer: not a score, not a verified export, not a trained
model, and never in a JSON document zoo writes."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.base import jsonio
from zoo.base.errors import NonFiniteScores
from zoo.model.input_config import InputConfig
from zoo.runtime.model import Model

from .conftest import REPO, run_zoo, small_train

LABELS = (("c0", "a"), ("c1", "b"))


def broken_model() -> Model:
    def runner(batch):
        return np.full((len(batch), 2), np.nan, np.float32)

    config = InputConfig((4, 4), zoo.PreprocessSpec("none"), LABELS)
    return Model("broken", config, runner, "onnx", "none")


def test_strict_json_refuses_nan_and_infinity():
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            jsonio.dumps({"score": value})
    assert jsonio.dumps({"score": 0.5}) == '{"score": 0.5}'


def test_every_json_zoo_writes_goes_through_the_strict_helper():
    bare = re.compile(r"\bjson\.dumps?\(")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("core", "plugins", "exporters")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "jsonio.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert offenders == []


def test_predict_refuses_non_finite_scores_naming_the_model(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(NonFiniteScores, match="model 'broken' gave non-finite scores"):
        broken_model().predict(path)


def test_the_server_answers_non_finite_scores_with_a_json_5xx():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*install `httpx2`")
        from starlette.testclient import TestClient
    from zoo.serve.app import build_app
    from zoo.serve.settings import ServeSettings

    path = REPO / "core" / "data" / "samples" / "cat.jpg"
    with TestClient(build_app({"broken": broken_model()}, ServeSettings())) as client:
        response = client.post("/v1/models/broken:predict", content=path.read_bytes())
    assert response.status_code == 500
    assert "model 'broken' gave non-finite scores" in response.json()["error"]


@pytest.mark.slow
def test_a_diverging_training_run_stops_and_writes_nothing(home, data):
    with pytest.raises(zoo.ZooError, match=r"training diverged: .* lower --learning-rate"):
        small_train(data, "diverged", learning_rate=1e38)
    assert not (home / "bundles" / "diverged").exists()


@pytest.mark.slow
def test_an_export_whose_outputs_are_nan_is_not_verified(mobilenet_onnx, tmp_path):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(mobilenet_onnx))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    values = np.full(numpy_helper.to_array(biggest).shape, np.nan, np.float32)
    biggest.CopyFrom(numpy_helper.from_array(values, biggest.name))
    poisoned = tmp_path / "poisoned.onnx"
    onnx.save(proto, str(poisoned))
    result = run_zoo("verify", "mobilenet", str(poisoned), "--weights", "none")
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert "ONNX Runtime gave non-finite outputs" in line and "not verified" in line
    report = Path(str(poisoned).replace(".onnx", ".verify.json"))
    assert not report.exists() or json.loads(report.read_text())["passed"] is False
