"""``zoo serve`` as a real uvicorn subprocess: the API, batching, limits, errors and shutdown."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import pytest

import zoo
import zoo.base.hardware

from .conftest import modules_imported, run_zoo
from .serving import ServeProcess

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SAMPLES = resources.files("zoo").joinpath("data/samples")
CAT = SAMPLES.joinpath("cat.jpg").read_bytes()
PARROT = SAMPLES.joinpath("parrot.jpg").read_bytes()
PREDICT = "/v1/models/mobilenet:predict"
BATCHES = 'zoo_batch_size_count{model="mobilenet"}'


def batches_up_to(size: int) -> str:
    return f'zoo_batch_size_bucket{{le="{float(size)}",model="mobilenet"}}'


@pytest.fixture(scope="module")
def server(mobilenet_onnx, tmp_path_factory):
    """One server for the tests that only ask questions of it."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServeProcess(str(mobilenet_onnx), "--provider", "cpu", "--max-body-mb", "1", log=log) as s:
        yield s


def serve(mobilenet_onnx, tmp_path, *options: str) -> ServeProcess:
    return ServeProcess(
        str(mobilenet_onnx), "--provider", "cpu", *options, log=tmp_path / "serve.log"
    )


def post_concurrently(server: ServeProcess, count: int) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: server.post_image(PREDICT, CAT), range(count)))


@pytest.mark.slow
def test_a_posted_photo_gets_the_zoo_predict_json(server, mobilenet_onnx, tmp_path):
    photo = tmp_path / "parrot.jpg"
    photo.write_bytes(PARROT)
    cli = run_zoo("predict", str(mobilenet_onnx), str(photo), "--provider", "cpu", "--json")
    assert cli.returncode == 0, cli.stderr
    want = json.loads(cli.stdout)
    want[0]["image"] = "body"

    status, headers, answer = server.post_image(PREDICT, PARROT)

    assert status == 200, answer
    assert headers["content-type"] == "application/json"
    assert answer == want


@pytest.mark.slow
def test_multipart_uploads_and_the_json_batch_form(server):
    boundary = uuid.uuid4().hex
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in (("cat.jpg", CAT), ("parrot.jpg", PARROT))
    )
    body = parts + f"--{boundary}--\r\n".encode()
    status, _, uploaded = server.post_image(
        PREDICT + "?top=3", body, f"multipart/form-data; boundary={boundary}"
    )
    assert status == 200, uploaded
    assert [r["image"] for r in uploaded] == ["cat.jpg", "parrot.jpg"]
    assert all(len(r["top"]) == 3 for r in uploaded)

    instances = [{"b64": base64.b64encode(CAT).decode(), "name": "a cat"}]
    instances.append({"b64": base64.b64encode(PARROT).decode()})
    document = json.dumps({"instances": instances}).encode()
    status, _, batch = server.post_image(PREDICT + "?top=3", document, "application/json")
    assert status == 200, batch
    assert [r["image"] for r in batch] == ["a cat", "instances[1]"]
    assert [r["top"] for r in batch] == [r["top"] for r in uploaded]


def test_models_health_and_page(server):
    status, _, listing = server.request("GET", "/v1/models")
    assert status == 200
    [model] = listing["models"]
    assert model["name"] == "mobilenet"
    assert model["input"] == {
        "name": "image",
        "layout": "NHWC",
        "dtype": "float32",
        "size": [224, 224],
    }
    assert model["preprocessing"]["name"] == "tf"
    assert model["labels"] == 1000 and model["precision"] == "fp32"
    assert model["providers"] == ["CPUExecutionProvider"]
    assert server.request("GET", "/v1/models/mobilenet")[2] == model
    # The start line names the device: here the CPU, its class, and why not a GPU.
    start = next(line for line in server.log.read_text().splitlines() if "serving" in line)
    assert f"/ on CPU ({zoo.base.hardware.cpu_name()}, {zoo.base.hardware.cpu_class()}): " in start
    assert server.request("GET", "/healthz")[:3:2] == (
        200,
        {"status": "ok", "models": ["mobilenet"]},
    )
    status, headers, page = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'id="file"' in page and "http://" not in page and "https://" not in page


BAD_REQUESTS = [
    # (what, path, body, content type, status, words in the error)
    ("not an image", PREDICT, b"hello, world", "image/jpeg", 422, "not an image"),
    ("truncated JPEG", PREDICT, CAT[: len(CAT) // 3], "image/jpeg", 422, "truncated"),
    ("empty body", PREDICT, b"", "image/jpeg", 400, "empty"),
    ("text", PREDICT, b"a cat", "text/plain", 415, "Content-Type"),
    ("bad JSON", PREDICT, b"{nope", "application/json", 400, "malformed JSON"),
    ("JSON without instances", PREDICT, b'{"images": []}', "application/json", 400, "instances"),
    ("bad base64", PREDICT, b'{"instances": [{"b64": "@@"}]}', "application/json", 400, "base64"),
    ("form without a file", PREDICT, b"a=1", "multipart/form-data; boundary=x", 400, "multipart"),
    ("unknown model", "/v1/models/nope:predict", CAT, "image/jpeg", 404, "unknown model"),
    ("top=0", PREDICT + "?top=0", CAT, "image/jpeg", 400, "top"),
    ("top=abc", PREDICT + "?top=abc", CAT, "image/jpeg", 400, "top"),
    ("too large", PREDICT, b"\xff" * (2 << 20), "image/jpeg", 413, "larger than"),
]


@pytest.mark.parametrize(
    "path, body, content_type, status, words",
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_gets_a_4xx_with_a_json_error(server, path, body, content_type, status, words):
    got, headers, answer = server.post_image(path, body, content_type)
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    assert set(answer) == {"error"} and words in answer["error"]


def test_unknown_routes_and_methods_are_json_too(server):
    assert server.request("GET", PREDICT)[::2] == (405, {"error": "Method Not Allowed"})
    assert server.request("GET", "/v2/nothing")[::2] == (404, {"error": "Not Found"})
    assert server.request("GET", "/v1/models/nope")[0] == 404


def test_metrics_count_requests_by_status_and_never_a_500(server):
    server.post_image(PREDICT, CAT)
    server.post_image(PREDICT, b"junk")
    _, headers, text = server.request("GET", "/metrics")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    for name in ("zoo_requests_total", "zoo_request_duration_seconds", "zoo_batch_size"):
        assert f"# TYPE {name} " in text
    samples = server.metrics()
    assert samples['zoo_requests_total{model="mobilenet",status="200"}'] >= 1
    assert samples['zoo_errors_total{kind="invalid_image",model="mobilenet"}'] >= 1
    assert not any('status="500"' in name for name in samples)
    assert samples['zoo_images_in_flight{model="mobilenet"}'] == 0


@pytest.mark.slow
def test_concurrent_requests_share_one_run(mobilenet_onnx, tmp_path):
    options = ("--max-batch-size", "8", "--batch-timeout-ms", "1500")
    with serve(mobilenet_onnx, tmp_path, *options) as server:
        answers = post_concurrently(server, 4)
        samples = server.metrics()
    assert [status for status, _, _ in answers] == [200] * 4
    assert samples[BATCHES] == 1
    assert samples[batches_up_to(2)] == 0
    assert samples[batches_up_to(4)] == 1


@pytest.mark.slow
def test_max_batch_size_1_runs_each_request_alone(mobilenet_onnx, tmp_path):
    with serve(mobilenet_onnx, tmp_path, "--max-batch-size", "1") as server:
        answers = post_concurrently(server, 4)
        samples = server.metrics()
    assert [status for status, _, _ in answers] == [200] * 4
    assert samples[BATCHES] == 4
    assert samples[batches_up_to(1)] == 4


@pytest.mark.slow
def test_a_full_queue_answers_503_with_retry_after(mobilenet_onnx, tmp_path):
    options = ("--max-queue", "2", "--max-batch-size", "8", "--batch-timeout-ms", "2000")
    with serve(mobilenet_onnx, tmp_path, *options) as server, ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(server.post_image, PREDICT, CAT) for _ in range(2)]
        server.wait_for_metric('zoo_images_in_flight{model="mobilenet"}', 2)
        status, headers, answer = server.post_image(PREDICT, CAT)
        assert status == 503 and headers["retry-after"] == "1"
        assert "busy" in answer["error"]
        assert [future.result()[0] for future in waiting] == [200, 200]


def peak_rss_mib(server: ServeProcess) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


OVERLOAD_PEAK_RSS_MIB = 1024
"""The server's peak memory under the overload test, stated; it took 274 MiB here."""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_five_times_the_queue_is_shed_fast_and_every_accepted_request_answered(
    mobilenet_onnx, tmp_path
):
    queue, seconds = 8, 3.0
    with serve(mobilenet_onnx, tmp_path, "--max-queue", str(queue)) as server:
        deadline = time.monotonic() + seconds

        def client(_) -> list[tuple[int, float, str | None]]:
            answers = []
            while time.monotonic() < deadline:
                started = time.monotonic()
                status, headers, _ = server.post_image(PREDICT, CAT)
                answers.append((status, time.monotonic() - started, headers["retry-after"]))
            return answers

        with ThreadPoolExecutor(5 * queue) as pool:  # closed loop: 5x the queue, all the time
            answers = [answer for some in pool.map(client, range(5 * queue)) for answer in some]
        samples = server.metrics()
        peak = peak_rss_mib(server)
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    rejected = sorted(took for status, took, _ in answers if status == 503)
    accepted = sorted(took for status, took, _ in answers if status == 200)
    assert {after for status, _, after in answers if status == 503} == {"1"}
    assert rejected[len(rejected) // 2] < accepted[len(accepted) // 2] / 2  # fast, not queued
    # Every request the server accepted was answered, and counted as such.
    assert samples['nv_inference_request_success{model="mobilenet",version="1"}'] == statuses[200]
    failed = 'nv_inference_request_failure{model="mobilenet",reason="REJECTED",version="1"}'
    assert samples[failed] == statuses[503]
    assert samples['zoo_errors_total{kind="overloaded",model="mobilenet"}'] == statuses[503]
    assert samples['zoo_images_in_flight{model="mobilenet"}'] == 0
    assert peak < OVERLOAD_PEAK_RSS_MIB, peak


@pytest.mark.slow
def test_sigterm_answers_every_accepted_request_then_exits_0(mobilenet_onnx, tmp_path):
    options = ("--max-batch-size", "64", "--batch-timeout-ms", "1500")
    with serve(mobilenet_onnx, tmp_path, *options) as server, ThreadPoolExecutor(6) as pool:
        waiting = [pool.submit(server.post_image, PREDICT, CAT) for _ in range(6)]
        server.wait_for_metric('zoo_queue_depth{model="mobilenet"}', 6)
        server.process.send_signal(signal.SIGTERM)
        assert [future.result()[0] for future in waiting] == [200] * 6
        assert server.process.wait(timeout=30) == 0
        with pytest.raises(ConnectionRefusedError):
            server.request("GET", "/healthz")
    assert server.log.read_text().rstrip().endswith("zoo: stopped")


@pytest.mark.slow
def test_serves_an_export_with_embedded_preprocessing(tmp_path):
    path = tmp_path / "mobilenet-uint8.onnx"
    result = run_zoo(
        "export", "mobilenet", "--weights", "none", "--embed-preprocessing",
        "-o", str(path), "--no-verify",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    photo = tmp_path / "parrot.jpg"
    photo.write_bytes(PARROT)
    want = zoo.load(path, backend="onnx", provider="cpu").predict(photo)
    with ServeProcess(str(path), "--provider", "cpu", log=tmp_path / "serve.log") as server:
        status, _, answer = server.post_image(PREDICT, PARROT)
        _, _, model = server.request("GET", "/v1/models/mobilenet")
    assert status == 200, answer
    assert answer[0]["top"] == [p.to_dict() for p in want]
    assert model["input"]["dtype"] == "uint8"


@pytest.mark.slow
def test_two_models_need_two_names(mobilenet_onnx):
    result = run_zoo(
        "serve", str(mobilenet_onnx), str(mobilenet_onnx), "--provider", "cpu", "--port", "0"
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"zoo: two models named 'mobilenet'; name one of them: NAME={mobilenet_onnx}"
    )


@pytest.mark.slow
def test_a_busy_port_is_one_line(server, mobilenet_onnx):
    result = run_zoo("serve", str(mobilenet_onnx), "--port", str(server.port), "--provider", "cpu")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"zoo: cannot listen on 127.0.0.1:{server.port}"
    )


@pytest.mark.slow
def test_without_the_serve_extra_it_says_what_to_install():
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from zoo.cli.main import main; sys.exit(main(['serve', 'model.onnx']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (
        "zoo: zoo serve needs the serve extra (uvicorn is missing): pip install 'zoo[serve]'\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"]])
def test_help_imports_no_server_or_runtime(args):
    result, imported = modules_imported(
        *args, among=("starlette", "uvicorn", "onnxruntime", "tensorflow")
    )
    assert result.returncode == 0, result.stderr
    assert imported == []


@pytest.mark.slow
@pytest.mark.real_weights
def test_real_mobilenet_served_agrees_with_keras(mobilenet_weights, shared_images, tmp_path):
    path = tmp_path / "mobilenet.onnx"
    weights = ("--weights", str(mobilenet_weights))
    exported = run_zoo("export", "mobilenet", *weights, "-o", str(path), "--no-verify")
    assert exported.returncode == 0, exported.stderr
    keras = run_zoo("predict", "mobilenet", *map(str, shared_images), *weights, "--json")
    assert keras.returncode == 0, keras.stderr
    with ServeProcess(str(path), "--provider", "cpu", log=tmp_path / "serve.log") as server:
        for image, want in zip(shared_images, json.loads(keras.stdout), strict=True):
            status, _, answer = server.post_image(PREDICT, image.read_bytes())
            assert status == 200, answer
            got = answer[0]["top"]
            assert [p["class_id"] for p in got] == [p["class_id"] for p in want["top"]], image
            for served, reference in zip(got, want["top"], strict=True):
                assert served["score"] == pytest.approx(reference["score"], abs=1e-3)
