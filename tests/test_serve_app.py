"""The serve app in-process (Starlette's TestClient), with toy models: what needs no real one."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from zoo.input_config import InputConfig
from zoo.model import Model
from zoo.specs import PreprocessSpec

pytest.importorskip("starlette")
pytest.importorskip("httpx")  # Starlette's TestClient runs on it

with warnings.catch_warnings():  # Starlette 1.x would rather have the httpx2 fork; both work
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from starlette.testclient import TestClient

from zoo.serve.app import build_app
from zoo.serve.metrics import ServeMetrics
from zoo.serve.settings import ServeSettings

LABELS = (("c0", "zero"), ("c1", "one"), ("c2", "two"))
NO_PREPROCESSING = PreprocessSpec("none")


def toy_model(runner) -> Model:
    return Model("toy", InputConfig((4, 4), NO_PREPROCESSING, LABELS), runner, "onnx", "none")


def png() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (6, 5), (200, 10, 10)).save(output, "PNG")
    return output.getvalue()


def test_a_failing_run_is_a_json_500_and_the_server_carries_on():
    calls = []

    def runner(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 2:  # the first request's run; the first call is the warm-up
            raise RuntimeError("the runtime fell over")
        return np.tile(np.array([[0.1, 0.7, 0.2]], np.float32), (len(batch), 1))

    with TestClient(build_app({"toy": toy_model(runner)}, ServeSettings())) as client:
        failed = client.post("/v1/models/toy:predict", content=png())
        answered = client.post("/v1/models/toy:predict?top=2", content=png())
        metrics = client.get("/metrics").text

    assert failed.status_code == 500
    assert failed.json() == {"error": "internal error: RuntimeError: the runtime fell over"}
    assert answered.status_code == 200
    assert [p["label"] for p in answered.json()[0]["top"]] == ["one", "two"]
    assert 'zoo_errors_total{kind="internal",model="toy"} 1.0' in metrics


def test_metrics_render_prometheus_text_or_openmetrics():
    metrics = ServeMetrics()
    metrics.requests.labels(model='a"b', status="200").inc()
    metrics.batch_size.labels(model="m").observe(3)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE zoo_batch_size histogram\n" in text
    assert 'zoo_requests_total{model="a\\"b",status="200"} 1.0\n' in text
    assert 'zoo_batch_size_bucket{le="2.0",model="m"} 0.0\n' in text
    assert 'zoo_batch_size_bucket{le="4.0",model="m"} 1.0\n' in text
    assert 'zoo_batch_size_bucket{le="+Inf",model="m"} 1.0\n' in text
    assert 'zoo_batch_size_count{model="m"} 1.0\nzoo_batch_size_sum{model="m"} 3.0\n' in text
    assert "_created" not in text
    body, content_type = metrics.render("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n")
