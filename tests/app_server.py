"""``zoo serve``'s app in-process, for the tests: uvicorn in a thread on a loopback port, with a
toy model (or the models given), and a small HTTP client; every socket has a timeout."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.runtime.model import Model

from .tiny_onnx import LABELS

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from zoo.serve.app import build_app  # noqa: E402
from zoo.serve.server import uvicorn_config  # noqa: E402
from zoo.serve.settings import ServeSettings  # noqa: E402

SOCKET_TIMEOUT_S = 10


PREDICT = "/v1/models/toy:predict"


JSON = {"Content-Type": "application/json"}


PNG_PIXELS = 6 * 5


def toy_model(runs: list[int] | None = None) -> Model:
    """The toy model; ``runs`` gets the size of each batch it runs."""

    def runner(batch: np.ndarray) -> np.ndarray:
        if runs is not None:
            runs.append(len(batch))
        return np.tile(np.array([[0.2, 0.5, 0.3]], np.float32), (len(batch), 1))

    return Model("toy", InputConfig((4, 4), PreprocessSpec("none"), LABELS), runner, "onnx", "none")


def png() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (6, 5), (200, 10, 10)).save(output, "PNG")
    return output.getvalue()


def instances(*names: str) -> bytes:
    """A JSON predict body: ``png()`` once per name, each named so."""
    encoded = base64.b64encode(png()).decode()
    return json.dumps({"instances": [{"b64": encoded, "name": name} for name in names]}).encode()


@contextlib.contextmanager
def serving(model: Model | None = None, load=None, **settings) -> Iterator[int]:
    """The app on a loopback port, uvicorn in a thread; yields the port. ``load``: a function
    the server calls to load its models, instead of ``model``."""
    app = build_app(load or {"toy": model or toy_model()}, ServeSettings(**settings))
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app, ServeSettings(**settings)))
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
