"""The serve app in-process (Starlette's TestClient), with toy models: what needs no real one."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from zoo.base.errors import ZooError
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.runtime.model import Model

pytest.importorskip("starlette")
pytest.importorskip("httpx")  # Starlette's TestClient runs on it

with warnings.catch_warnings():  # Starlette 1.x would rather have the httpx2 fork; both work
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from starlette.testclient import TestClient

from zoo.serve.app import build_app
from zoo.serve.metrics import ServeMetrics
from zoo.serve.settings import ServeSettings

from .app_server import (
    PREDICT,
    SOCKET_TIMEOUT_S,
    metrics,
    request,
    serving,
    wait_for,
)

httpclient = pytest.importorskip("tritonclient.http")

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


# Readiness, batching and the queue, with the app on a loopback port -------------------------

V2_INFER = "/v2/models/toy/infer"


def v2_body() -> bytes:
    encoded = base64.b64encode(png()).decode()
    tensor = {"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [encoded]}
    return json.dumps({"inputs": [tensor]}).encode()


def wait_until(condition, timeout: float = SOCKET_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def held_runner(runs: list[int], hold_run: int, release: threading.Event):
    """A toy runner that records each batch's size and holds its ``hold_run``-th run (the
    first is the warm-up) until ``release`` is set."""

    def runner(batch: np.ndarray) -> np.ndarray:
        runs.append(len(batch))
        if len(runs) == hold_run:
            release.wait(SOCKET_TIMEOUT_S)
        return np.tile(np.array([[0.1, 0.7, 0.2]], np.float32), (len(batch), 1))

    return runner


def test_live_at_once_and_ready_only_after_a_slow_load_and_its_warm_up():
    loaded, warmed, runs = threading.Event(), threading.Event(), []

    def load():  # a model that takes its time to load, then to run the first time
        loaded.wait(SOCKET_TIMEOUT_S)
        return {"toy": toy_model(held_runner(runs, 1, warmed))}

    with serving(load=load) as port:
        triton = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=10)
        for _ in ("loading", "warming up"):
            assert triton.is_server_live()
            assert not triton.is_server_ready() and not triton.is_model_ready("toy")
            health = request(port, "GET", "/healthz")
            assert health[0] == 503 and json.loads(health[2])["status"] == "loading"
            for path, body in ((PREDICT, png()), (V2_INFER, v2_body())):
                status, headers, answer = request(port, "POST", path, body)
                assert status == 503 and headers["retry-after"] == "1"
                assert "still loading" in json.loads(answer)["error"]
            loaded.set()
            wait_until(lambda: runs == [1])  # the warm-up has started, and is held
        warmed.set()
        wait_until(triton.is_server_ready)
        assert triton.is_model_ready("toy")
        assert request(port, "POST", V2_INFER, v2_body())[0] == 200
        triton.close()
    assert runs == [1, 1]


def test_a_model_that_fails_to_load_is_never_ready_and_says_why():
    def load():
        raise ZooError("no such model")

    app = build_app(load, ServeSettings())
    failures = []
    app.state.service.on_failure = failures.append
    with TestClient(app) as client:
        wait_until(lambda: failures)
        assert client.get("/v2/health/ready").status_code == 400
        assert client.get("/v2/health/live").status_code == 200
    assert [str(f) for f in failures] == ["no such model"]


def test_a_lone_request_runs_at_once_and_a_busy_model_gathers_the_next_batch():
    release, runs = threading.Event(), []
    with serving(toy_model(held_runner(runs, 2, release))) as port, ThreadPoolExecutor(4) as pool:
        first = pool.submit(request, port, "POST", PREDICT, png())
        wait_until(lambda: runs == [1, 1])  # the warm-up, then the first request: alone, at once
        others = [pool.submit(request, port, "POST", PREDICT, png()) for _ in range(3)]
        wait_for(port, 'zoo_queue_depth{model="toy"}', 3)  # they wait while the model is busy
        release.set()
        assert [f.result()[0] for f in (first, *others)] == [200] * 4
        samples = metrics(port)
    assert runs == [1, 1, 3]
    assert samples['nv_inference_count{model="toy",version="1"}'] == 4
    assert samples['nv_inference_exec_count{model="toy",version="1"}'] == 2


@pytest.mark.slow
def test_a_request_that_waits_past_the_queue_timeout_gets_a_503_and_is_not_run():
    release, runs = threading.Event(), []
    model = toy_model(held_runner(runs, 2, release))
    with serving(model, queue_timeout_ms=300) as port, ThreadPoolExecutor(1) as pool:
        first = pool.submit(request, port, "POST", PREDICT, png())
        wait_until(lambda: runs == [1, 1])
        started = time.monotonic()
        status, headers, answer = request(port, "POST", V2_INFER, v2_body())
        waited = time.monotonic() - started
        assert status == 503 and headers["retry-after"] == "1"
        assert "within 300 ms (--queue-timeout-ms)" in json.loads(answer)["error"]
        assert 0.3 <= waited < 3
        release.set()
        assert first.result()[0] == 200
        assert request(port, "POST", PREDICT, png())[0] == 200
        samples = metrics(port)
    assert runs == [1, 1, 1]  # the timed-out request never ran
    assert samples['zoo_errors_total{kind="queue_timeout",model="toy"}'] == 1
    failed = 'nv_inference_request_failure{model="toy",reason="REJECTED",version="1"}'
    assert samples[failed] == 1
    assert samples['nv_inference_request_success{model="toy",version="1"}'] == 2
