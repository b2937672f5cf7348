"""What hostile or broken clients send ``zoo serve``: bodies trickled byte by byte, clients that
hang up mid-body or while their images wait, JSON nested 100,000 deep, small files that decode
to huge images, query values that only look like numbers, unknown routes and methods; a
shutdown with work left; and files whose model card lies about the graph.

The promise (docs/errors.md): a 4xx JSON error for bad input, never a 500 or a hang, and
``/metrics`` counting what was answered. The server runs in-process (uvicorn in a thread, on
a loopback port, with a toy model) so that raw sockets can misbehave; every socket has a
timeout.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from zoo.base.errors import ZooError
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.runtime.model import Model

from .app_server import (
    JSON,
    PNG_PIXELS,
    PREDICT,
    SOCKET_TIMEOUT_S,
    instances,
    metrics,
    png,
    request,
    serving,
    toy_model,
    wait_for,
)
from .conftest import run_zoo
from .image_files import png_bomb
from .serving import ServeProcess
from .tiny_onnx import write_tiny_onnx

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from starlette.testclient import TestClient

from zoo.serve import decoding  # noqa: E402
from zoo.serve.app import build_app  # noqa: E402
from zoo.serve.settings import ServeSettings  # noqa: E402


def trickle(port: int, declared: int = 1000) -> socket.socket:
    """A client that sends the headers and one byte of a ``declared``-byte body, then waits."""
    client = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    client.sendall(
        f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
    )
    client.sendall(b"\x89")
    return client


def send_whole(port: int, body: bytes, content_type: str = "application/json") -> socket.socket:
    """A client that sends a whole predict request and waits (to hang up when told)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    client.sendall(
        f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return client


class Decodes:
    """The server's decoding, recorded: ``names`` of the images decoded, in order; the image
    named "held" waits in its decoding thread until ``release`` is set."""

    def __init__(self, monkeypatch):
        self.names: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        decode = decoding.decode_to_size

        def recorded(image, name, config):
            self.names.append(name)
            if name == "held":
                self.holding.set()
                assert self.release.wait(SOCKET_TIMEOUT_S)
            return decode(image, name, config)

        monkeypatch.setattr(decoding, "decode_to_size", recorded)

    @contextlib.contextmanager
    def held(self, port: int) -> Iterator:
        """A request whose image holds a decoding thread until the block ends; yields the
        future of its (status, headers, body)."""
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(request, port, "POST", PREDICT, instances("held"), JSON)
            try:
                assert self.holding.wait(SOCKET_TIMEOUT_S)
                yield answer
            finally:
                self.release.set()


@pytest.fixture
def decodes(monkeypatch) -> Decodes:
    return Decodes(monkeypatch)


def read_until_closed(client: socket.socket) -> bytes:
    answer = b""
    while chunk := client.recv(65536):  # socket.timeout (a failure) if it is never closed
        answer += chunk
    return answer


# 3. A body trickled byte by byte ---------------------------------------------------------


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_work_for_clients_that_hung_up_is_dropped_before_decoding(decodes):
    with serving(decode_threads=1) as port, decodes.held(port) as held:
        gone = [send_whole(port, instances(f"gone {i}")) for i in range(5)]
        wait_for(port, "zoo_decoding_pixels", 6 * PNG_PIXELS)  # five wait for the thread
        for client in gone:
            client.close()
        samples = wait_for(port, 'zoo_client_disconnects_total{model="toy"}', 5)
        assert samples["zoo_decoding_pixels"] == PNG_PIXELS  # theirs are given back at once
        decodes.release.set()
        assert held.result()[0] == 200
        assert request(port, "POST", PREDICT, png())[0] == 200
        samples = wait_for(port, "zoo_decoding_pixels", 0)
    assert decodes.names == ["held", "body"]
    assert samples['zoo_requests_total{model="toy",status="200"}'] == 2
    assert not any('status="400"' in name or "zoo_errors" in name for name in samples)


@pytest.mark.slow
def test_an_image_whose_client_hung_up_while_it_waited_for_a_batch_is_not_run():
    runs = []
    with serving(toy_model(runs), batch_timeout_ms=1000, max_batch_size=8) as port:
        with send_whole(port, png(), "image/png"):
            wait_for(port, 'zoo_queue_depth{model="toy"}', 1)
        wait_for(port, 'zoo_client_disconnects_total{model="toy"}', 1)
        wait_for(port, 'zoo_queue_depth{model="toy"}', 0)  # its batch has closed
        assert request(port, "POST", PREDICT, png())[0] == 200
        samples = metrics(port)
    assert runs == [1, 1]  # the warm-up, then the second request's batch only
    assert samples['zoo_requests_total{model="toy",status="200"}'] == 1


# Small files that decode to huge images ----------------------------------------------------


def test_more_pixels_than_a_request_may_have_get_413_before_decoding(decodes, tmp_path):
    header_only = png_bomb(tmp_path / "huge.png", width=9000, height=8000).read_bytes()
    with serving(max_request_pixels=100, max_decoding_pixels=100) as port:
        huge = request(port, "POST", PREDICT, header_only, {"Content-Type": "image/png"})
        several = request(port, "POST", PREDICT, instances("a", "b", "c", "d"), JSON)
        assert request(port, "POST", PREDICT, instances("a", "b", "c"), JSON)[0] == 200
        samples = metrics(port)
    assert huge[0] == 413 and json.loads(huge[2]) == {
        "error": "the request's images have 72,000,000 pixels; at most 100 "
        "(--max-request-megapixels)"
    }
    assert several[0] == 413 and json.loads(several[2]) == {
        "error": "the request's images have 120 pixels; at most 100 (--max-request-megapixels)"
    }
    assert decodes.names == ["a", "b", "c"]
    assert samples['zoo_errors_total{kind="payload_too_large",model="toy"}'] == 2


def test_the_default_request_budget_refuses_a_huge_png_before_decoding(decodes, tmp_path):
    header_only = png_bomb(tmp_path / "huge.png", width=9400, height=9400).read_bytes()
    with serving() as port:
        status, _, body = request(port, "POST", PREDICT, header_only, {"Content-Type": "image/png"})
    assert status == 413 and "88,360,000 pixels; at most 64,000,000" in json.loads(body)["error"]
    assert decodes.names == []


def test_pixels_beyond_the_decoding_budget_get_503_with_retry_after(decodes):
    budget = {"max_request_pixels": 2 * PNG_PIXELS, "max_decoding_pixels": 2 * PNG_PIXELS}
    with serving(**budget) as port:
        with decodes.held(port) as held:
            assert request(port, "POST", PREDICT, png())[0] == 200  # within the budget
            status, headers, body = request(port, "POST", PREDICT, instances("a", "b"), JSON)
            assert status == 503 and headers["retry-after"] == "1"
            assert json.loads(body) == {
                "error": "30 pixels are being decoded already; this request's 60 would pass 60 "
                "(--max-decoding-megapixels); retry shortly"
            }
        assert held.result()[0] == 200
        assert request(port, "POST", PREDICT, instances("a", "b"), JSON)[0] == 200
        samples = metrics(port)
    assert samples['zoo_errors_total{kind="overloaded",model="toy"}'] == 1


@pytest.mark.slow
def test_a_request_budget_larger_than_the_decoding_budget_is_refused():
    result = run_zoo("serve", "model.onnx", "--max-request-megapixels", "200", timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        "zoo: --max-request-megapixels (200) is more than --max-decoding-megapixels (128): "
        "a request that large could never be decoded\n"
    )


# Query values that only look like numbers --------------------------------------------------


@pytest.mark.parametrize(
    "top, shown",
    [
        ("%C2%B2", "'²'"),  # str.isdigit() says yes; int() says no
        ("%EF%BC%93", "'\uff13'"),  # a full-width 3, which int() reads as 3
        ("9" * 5000, "'99999999999999999999...'"),  # past int()'s 4,300 digits
        ("1234567890", "'1234567890'"),
        ("-1", "'-1'"),
        ("", "''"),
    ],
    ids=["superscript", "full_width", "5000_digits", "10_digits", "negative", "empty"],
)
def test_a_top_that_is_not_a_few_ascii_digits_is_a_400(top, shown):
    with serving() as port:
        status, _, body = request(port, "POST", f"{PREDICT}?top={top}", png())
        samples = metrics(port)
    assert status == 400
    assert json.loads(body) == {
        "error": f"top must be a positive integer of at most 9 digits, not {shown}"
    }
    assert not any('status="500"' in name for name in samples)


# A shutdown with more work than --shutdown-timeout -----------------------------------------


@pytest.mark.slow
def test_requests_cut_short_by_the_shutdown_timeout_get_a_json_503(tmp_path):
    model = write_tiny_onnx(tmp_path / "tiny.onnx")
    options = ("--provider", "cpu", "--batch-timeout-ms", "20000", "--max-batch-size", "64")
    with (
        ServeProcess(str(model), *options, "--shutdown-timeout", "0.5", log=tmp_path / "log") as s,
        ThreadPoolExecutor(3) as pool,
    ):
        waiting = [
            pool.submit(s.post_image, "/v1/models/tiny:predict", png(), "image/png")
            for _ in range(3)
        ]
        s.wait_for_metric('zoo_queue_depth{model="tiny"}', 3)
        s.process.send_signal(signal.SIGTERM)
        answers = [future.result() for future in waiting]
        assert s.process.wait(timeout=30) == 0
    for status, headers, body in answers:
        assert status == 503 and headers["content-type"] == "application/json"
        assert body == {
            "error": "the server is stopping and --shutdown-timeout passed before this request "
            "was answered; retry"
        }
    log = s.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert log.rstrip().endswith("zoo: stopped")


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


@pytest.mark.slow
def test_serve_refuses_a_file_whose_card_lies_with_one_line(tmp_path):
    lying = write_tiny_onnx(
        tmp_path / "lying.onnx", lambda card: card.update(labels=[["a", "a"]] * 10)
    )
    result = run_zoo("serve", str(lying), "--port", "0", "--provider", "cpu", timeout=60)
    assert result.returncode == 1
    loading, reason = result.stderr.splitlines()  # it listens first, loads in the background
    assert loading.startswith(f"zoo: loading {lying}; live at http://127.0.0.1:")
    assert reason == (
        f"zoo: {lying}: its zoo model card does not match its graph: 10 labels, but the "
        "graph's 'probabilities' has 3 classes"
    )


def test_load_models_refuses_a_huge_input_size(tmp_path):
    from zoo.serve.server import load_models

    lying = write_tiny_onnx(
        tmp_path / "huge.onnx", lambda card: card["input"].update(size=[8000, 8000])
    )
    with pytest.raises(ZooError, match="does not match its graph"):
        load_models([str(lying)], "cpu", 0)


# 7. A label that is not text, from a card zoo did not write ------------------------------


def test_a_label_utf8_cannot_carry_is_answered_escaped_never_a_500():
    labels = (("c0", "fine"), ("c1", "lone \ud800 surrogate"), ("c\udcff", "x"))
    config = InputConfig((4, 4), PreprocessSpec("none"), labels)
    model = Model("toy", config, toy_model().runner, "onnx", "none")
    pixels = {"name": "image", "datatype": "UINT8", "shape": [1, 4, 4, 3], "data": [0] * 48}
    with TestClient(build_app({"toy": model}, ServeSettings())) as client:
        v1 = client.post(f"{PREDICT}?top=3", content=png())
        answers = {
            binary: client.post(
                "/v2/models/toy/infer",
                json={
                    "inputs": [pixels],
                    "outputs": [
                        {
                            "name": "probabilities",
                            "parameters": {"classification": 3, "binary_data": binary},
                        }
                    ],
                },
            )
            for binary in (False, True)
        }
    assert v1.status_code == 200, v1.text
    assert [(p["class_id"], p["label"]) for p in v1.json()[0]["top"]] == [
        ("c1", "lone \\ud800 surrogate"),
        ("c\\udcff", "x"),
        ("c0", "fine"),
    ]
    assert answers[False].status_code == 200, answers[False].text
    assert answers[False].json()["outputs"][0]["data"][0].endswith(":1:lone \\ud800 surrogate")
    assert answers[True].status_code == 200
    assert b":1:lone \\ud800 surrogate" in answers[True].content


# 3. Request headers trickled, and more connections than the server holds ----------------


def _trickling(port: int) -> socket.socket:
    """A client that has sent part of a request line and headers (more to come, slowly)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    return client


def _closed(client: socket.socket) -> bool:
    try:
        return client.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_clients_trickling_headers_are_closed_within_the_timeout_while_others_are_answered(
    capfd,
):
    timeout = 1.0
    with serving(header_timeout_s=timeout) as port:
        opened = time.monotonic()
        clients = [_trickling(port) for _ in range(200)]
        for _ in range(3):  # a byte each, now and then: never idle, never done
            for client in clients:
                client.sendall(b"x")
            assert request(port, "GET", "/healthz")[0] == 200  # the others are answered
            time.sleep(timeout / 4)
        for client in clients:
            client.settimeout(max(0.1, opened + timeout + 2.0 - time.monotonic()))
            assert _closed(client), "a trickling client was not closed within the timeout"
            client.close()
        samples = metrics(port)
    assert samples['zoo_connections_shed_total{reason="header_timeout"}'] == 200
    notices = [line for line in capfd.readouterr().err.splitlines() if "did not arrive" in line]
    assert notices[0] == (
        "zoo: closed a connection whose request headers did not arrive within 1 s "
        "(--header-timeout-s)"
    )
    assert len(notices) == 1  # the rest are counted, not each said


def test_a_connection_past_the_bound_gets_a_json_503_at_once():
    with serving(max_connections=3) as port:
        held = [socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)]
        held += [socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)]
        held += [_trickling(port)]
        wait_until_open = time.monotonic() + SOCKET_TIMEOUT_S
        while True:  # the server has taken the three (an answer proves it for the last)
            status, headers, body = request(port, "GET", "/healthz")
            if status == 503 or time.monotonic() > wait_until_open:
                break
        assert status == 503
        assert headers["retry-after"] == "1"
        assert json.loads(body) == {"error": "too many open connections (--max-connections 3)"}
        for client in held:
            client.close()
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while (status := request(port, "GET", "/healthz")[0]) != 200:
            assert time.monotonic() < deadline, status
        samples = metrics(port)
    assert samples['zoo_connections_shed_total{reason="connection_limit"}'] >= 1


def test_the_descriptor_limit_is_raised_to_hold_the_bound_or_the_bound_lowered(monkeypatch, capsys):
    import resource

    from zoo.serve.connections import DESCRIPTORS_SPARE, fit_descriptor_limit

    limits = {"soft": 1024, "hard": 4096}
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (limits["soft"], limits["hard"]))

    def setrlimit(kind, pair):
        if pair[0] > limits["hard"]:
            raise ValueError("not allowed to raise maximum limit")
        limits["soft"] = pair[0]

    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    settings = ServeSettings(max_connections=1000)
    assert fit_descriptor_limit(settings) == settings
    assert limits["soft"] == 1000 + DESCRIPTORS_SPARE
    assert capsys.readouterr().err == ""

    limits.update(soft=1024, hard=1024)
    assert fit_descriptor_limit(settings).max_connections == 1024 - DESCRIPTORS_SPARE
    assert capsys.readouterr().err == (
        "zoo: warning: --max-connections 1000 does not fit the file-descriptor limit (1024; "
        "ulimit -n); serving at most 768 connections\n"
    )
