"""A ``zoo serve`` subprocess on a free loopback port, and a small HTTP client, for the tests."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


class ServeProcess:
    """``zoo serve ARGS --port 0``, started on entering (and, unless ``ready`` is False, ready:
    its models loaded and warmed up), stopped (SIGTERM) on leaving."""

    def __init__(self, *args: str, log: Path, ready: bool = True):
        self.args = args
        self.log = log
        self.started = re.compile(
            r"zoo: serving .* at http://[^:]+:(\d+)/" if ready else r"live at http://[^:]+:(\d+)/"
        )
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServeProcess:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zoo", "serve", *self.args, "--port", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.port = self._wait_for_port()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def _wait_for_port(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.started.search(self.log.read_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise RuntimeError(f"zoo serve exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"zoo serve did not start: {self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        """(status, headers, body parsed as JSON when it is JSON, else text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, response.headers, json.loads(data) if is_json else data.decode()

    def post_image(self, path: str, data: bytes, content_type: str = "image/jpeg"):
        return self.request("POST", path, data, {"Content-Type": content_type})

    def metrics(self) -> dict[str, float]:
        """``/metrics`` samples by their exposition name, labels included (as written)."""
        status, _, text = self.request("GET", "/metrics")
        assert status == 200
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def wait_for_metric(self, name: str, value: float, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.metrics().get(name) != value:
            assert time.monotonic() < deadline, f"{name} never reached {value}"
            time.sleep(0.02)
