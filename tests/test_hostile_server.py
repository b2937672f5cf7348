"""What hostile or broken clients send ``zoo serve``: bodies trickled byte by byte, clients that
hang up mid-body, JSON nested 100,000 deep, unknown routes and methods; and files whose model
card lies about the graph.

The promise (docs/errors.md): a 4xx JSON error for bad input, never a 500 or a hang, and
``/metrics`` counting what was answered. The server runs in-process (uvicorn in a thread, on
a loopback port, with a toy model) so that raw sockets can misbehave; every socket has a
timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from zoo.errors import ZooError
from zoo.input_config import InputConfig
from zoo.model import Model
from zoo.specs import PreprocessSpec

from .conftest import run_zoo
from .tiny_onnx import LABELS, write_tiny_onnx

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from starlette.testclient import TestClient

from zoo.serve.app import build_app  # noqa: E402
from zoo.serve.settings import ServeSettings  # noqa: E402

SOCKET_TIMEOUT_S = 10
PREDICT = "/v1/models/toy:predict"


def toy_model() -> Model:
    def runner(batch: np.ndarray) -> np.ndarray:
        return np.tile(np.array([[0.2, 0.5, 0.3]], np.float32), (len(batch), 1))

    return Model("toy", InputConfig((4, 4), PreprocessSpec("none"), LABELS), runner, "onnx", "none")


def png() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (6, 5), (200, 10, 10)).save(output, "PNG")
    return output.getvalue()


@contextlib.contextmanager
def serving(**settings) -> Iterator[int]:
    """The app on a loopback port, uvicorn in a thread; yields the port."""
    app = build_app({"toy": toy_model()}, ServeSettings(**settings))
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(SOCKET_TIMEOUT_S)


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def metrics(port: int) -> dict[str, float]:
    _, _, text = request(port, "GET", "/metrics")
    samples = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_for(port: int, sample: str, value: float) -> dict[str, float]:
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while (samples := metrics(port)).get(sample) != value:
        assert time.monotonic() < deadline, f"{sample} never reached {value}: {samples}"
        time.sleep(0.02)
    return samples


def trickle(port: int, declared: int = 1000) -> socket.socket:
    """A client that sends the headers and one byte of a ``declared``-byte body, then waits."""
    client = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    client.sendall(
        f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
    )
    client.sendall(b"\x89")
    return client


def read_until_closed(client: socket.socket) -> bytes:
    answer = b""
    while chunk := client.recv(65536):  # socket.timeout (a failure) if it is never closed
        answer += chunk
    return answer


# 3. A body trickled byte by byte ---------------------------------------------------------


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closed():
    with serving(body_timeout_s=0.5) as port:
        started = time.monotonic()
        with trickle(port) as client:
            answer = read_until_closed(client)
        assert time.monotonic() - started < 5
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 408 Request Timeout"
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"].startswith(
            "the request body did not arrive within 0.5 s"
        )
        samples = wait_for(port, 'zoo_requests_total{model="toy",status="408"}', 1)
        assert samples['zoo_errors_total{kind="body_timeout",model="toy"}'] == 1
        assert request(port, "POST", PREDICT, png())[0] == 200  # others are still served


def test_requests_beyond_the_body_reader_cap_get_503_at_once():
    with serving(body_timeout_s=5, max_body_readers=2) as port:
        with trickle(port) as first, trickle(port) as second:
            time.sleep(0.3)  # both are reading their bodies now
            status, headers, body = request(port, "POST", PREDICT, png())
            assert status == 503 and headers["retry-after"] == "1"
            assert "--max-body-readers" in json.loads(body)["error"]
            first.close(), second.close()
        wait_for(port, 'zoo_client_disconnects_total{model="toy"}', 2)
        assert request(port, "POST", PREDICT, png())[0] == 200


# 8. What /metrics counts: what was answered, disconnects apart ----------------------------


def test_a_client_that_hangs_up_mid_body_is_a_disconnect_not_a_500():
    with serving() as port:
        for _ in range(3):
            with trickle(port):
                pass
        samples = wait_for(port, 'zoo_client_disconnects_total{model="toy"}', 3)
        assert not any('status="500"' in name or "internal" in name for name in samples)
        assert not any(name.startswith("zoo_requests_total") and "toy" in name for name in samples)


def test_unknown_routes_and_wrong_methods_are_counted():
    with TestClient(build_app({"toy": toy_model()}, ServeSettings())) as client:
        assert client.get("/nothing/here").status_code == 404
        assert client.get(PREDICT).status_code == 405
        assert client.post("/v1/models/nope:predict", content=png()).status_code == 404
        assert client.post(PREDICT, content=png()).status_code == 200
        text = client.get("/metrics").text
    assert 'zoo_requests_total{model="",status="404"} 2.0' in text
    assert 'zoo_requests_total{model="toy",status="405"} 1.0' in text
    assert 'zoo_requests_total{model="toy",status="200"} 1.0' in text


# 7. JSON nested deeper than any request needs ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"instances": ' + b"[" * 100_000,
        b'{"instances": [{"b64": "", "name": ' + b"[" * 900 + b"]" * 900 + b"}]}",
    ],
    ids=["arrays", "inside_instances", "nested_name"],
)
def test_deeply_nested_json_is_a_400(body):
    with TestClient(build_app({"toy": toy_model()}, ServeSettings())) as client:
        answer = client.post(PREDICT, content=body, headers={"Content-Type": "application/json"})
        text = client.get("/metrics").text
    assert 400 <= answer.status_code < 500, answer.text  # 400, or 422 for the empty image
    assert "error" in answer.json()
    assert 'status="500"' not in text


# 2. Files whose card does not match the graph ---------------------------------------------


def test_serve_refuses_a_file_whose_card_lies_with_one_line(tmp_path):
    lying = write_tiny_onnx(
        tmp_path / "lying.onnx", lambda card: card.update(labels=[["a", "a"]] * 10)
    )
    result = run_zoo("serve", str(lying), "--port", "0", "--provider", "cpu", timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        f"zoo: {lying}: its zoo model card does not match its graph: 10 labels, but the "
        "graph's 'probabilities' has 3 classes\n"
    )


def test_load_models_refuses_a_huge_input_size(tmp_path):
    from zoo.serve.server import load_models

    lying = write_tiny_onnx(
        tmp_path / "huge.onnx", lambda card: card["input"].update(size=[100000, 100000])
    )
    with pytest.raises(ZooError, match="does not match its graph"):
        load_models([str(lying)], "cpu", 0)
