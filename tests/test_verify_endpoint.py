"""``zoo verify MODEL --endpoint URL``: a deployment checked against its source through the Open
Inference Protocol. Real servers on loopback each verify the tiny export and catch one wrong
deployment (``zoo serve`` here; MLServer, KServe and Triton in ``test_verify_endpoint_servers.py``);
small servers written here answer logits, JSON only, and every hostile way an endpoint can
answer, each caught in one line within the timeout."""

from __future__ import annotations

import contextlib
import email
import http.client
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from zoo.cli.main import main
from zoo.exporters.endpoint import onnx_side, verify_endpoint
from zoo.exporters.oip_client import (
    HEADER_LENGTH,
    MAX_BODY_BYTES,
    Answer,
    EndpointError,
    OipClient,
    parse_answer,
)
from zoo.runtime.samples import sample_images

from .conftest import run_zoo
from .serving import ServeProcess
from .tiny_onnx import LABELS, SIZE, write_tiny_onnx

pytest.importorskip("onnxruntime")
TIMEOUT_S = 1.0
"""--timeout for the hostile endpoints; each must be done well within TIMEOUT_S + MARGIN_S."""
MARGIN_S = 4.0
PHOTOS = [p.name for p in sample_images()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def verify(capsys, *args: str) -> tuple[int, str, str]:
    """``zoo verify ARGS`` in this process: (exit status, stdout, stderr)."""
    status = main(["verify", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: "), err
    return lines[0]


# zoo serve, the real server that is always here.


@pytest.fixture(scope="module")
def served(tiny, tmp_path_factory) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServeProcess(str(tiny), "--provider", "cpu", log=log) as server:
        yield server


@pytest.mark.slow
def test_a_zoo_serve_deployment_verifies_through_each_input(capsys, tiny, served):
    status, out, err = verify(capsys, str(tiny), "--endpoint", served.url)
    assert status == 0, err
    line = out.strip()
    assert "\n" not in line and "top-5 identical" in line
    assert "image_bytes (BYTES), image (UINT8, NHWC) in binary" in line
    assert f"on {len(PHOTOS)} photos at batch sizes 1, 8" in line
    assert "it answers probabilities" in line and "labels checked" in line


@pytest.mark.slow
def test_json_or_binary_tensors_alike(capsys, tiny, served):
    reference = onnx_side(tiny, sample_images())
    client = OipClient(served.url, 10)
    for binary in (False, True):
        report = verify_endpoint(client, "tiny", reference, binary=binary)
        assert report.passed and report.binary is binary
        assert report.max_relative_diff < 1e-6
    status, out, _ = verify(capsys, str(tiny), "--endpoint", served.url, "--json")
    document = json.loads(out)
    assert status == 0 and document["passed"] and document["binary_tensor_data"]
    assert document["scores"] == ["probabilities"] and document["labels_checked"]
    assert sorted(document["inputs"]) == ["image (UINT8, NHWC)", "image_bytes (BYTES)"]
    checks = document["inputs"]["image_bytes (BYTES)"]["checks"]
    assert {c["image"] for c in checks} == set(PHOTOS)
    assert all(c["keras_top5"] == c["onnx_top5"] for c in checks)


@pytest.mark.slow
def test_zoo_serve_with_labels_in_another_order_is_caught(capsys, tiny, tmp_path):
    def reversed_labels(card: dict) -> None:
        card["labels"] = card["labels"][::-1]

    wrong = write_tiny_onnx(tmp_path / "relabelled.onnx", reversed_labels)
    with ServeProcess(f"tiny={wrong}", "--provider", "cpu", log=tmp_path / "log") as server:
        status, out, err = verify(capsys, str(tiny), "--endpoint", server.url)
    line = one_line(err)
    assert status == 1 and out == ""
    assert "labels the classes otherwise on" in line and any(p in line for p in PHOTOS)
    # both top lists: the endpoint's labels, and the model's for the same classes
    endpoint, model = (part.split("]")[0] for part in line.split("[")[1:3])
    assert endpoint.split(", ") == [LABELS[::-1][i][1] for i in _indices(model)]


def _indices(labels: str) -> list[int]:
    names = [label for _, label in LABELS]
    return [names.index(label) for label in labels.split(", ")]


def test_an_unknown_model_name_is_one_line(capsys, tiny, served):
    status, _, err = verify(
        capsys, str(tiny), "--endpoint", served.url, "--endpoint-model", "other"
    )
    assert status == 1 and "/v2/models/other: HTTP 404" in one_line(err)


@pytest.mark.tensorflow
def test_keras_is_the_reference_of_a_registered_model(capsys, mobilenet_weights, tmp_path):
    exported = tmp_path / "mobilenet.onnx"
    weights = str(mobilenet_weights)
    made = run_zoo("export", "mobilenet", "--weights", weights, "-o", str(exported), "--no-verify")
    assert made.returncode == 0, made.stderr
    with ServeProcess(str(exported), "--provider", "cpu", log=tmp_path / "log") as server:
        status, out, err = verify(
            capsys, "mobilenet", "--endpoint", server.url, "--weights", weights
        )
    assert status == 0, err
    assert f"model 'mobilenet' against Keras on {len(PHOTOS)} photos" in out
    assert "top-5 identical" in out and "labels checked" in out


# Servers written here: a model that answers logits, in JSON only; and hostile endpoints.


class Endpoint(BaseHTTPRequestHandler):
    """An Open Inference Protocol server for the tiny model, computed in NumPy from FP32
    values (its card's preprocessing done by the client) in ``layout``, answering logits;
    ``swap_channels`` makes it another model's (BGR); ``answer`` may replace it all."""

    protocol_version = "HTTP/1.1"
    layout = "NHWC"
    metadata_shape: list[int] | None = None
    """What the metadata declares (None: the tiny model's shape in ``layout``)."""
    swap_channels = False
    infer_error: int | None = None
    """An HTTP status every inference gets, with an error that is not one line."""
    mangle: Callable[[dict], None] | None = None
    """Changes each inference response's output before it is sent."""
    answer: Callable | None = None

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.answer:
            return self.answer(self)
        if self.path == "/v2":
            return self.send_json({"name": "numpy", "extensions": []})
        if self.path == "/v2/models/tiny/ready":
            return self.send_json({"ready": True})
        if self.path == "/v2/models/tiny":
            shape = [-1, *SIZE, 3] if self.layout == "NHWC" else [-1, 3, *SIZE]
            inputs = [{"name": "x", "datatype": "FP32", "shape": self.metadata_shape or shape}]
            outputs = [{"name": "logits", "datatype": "FP32", "shape": [-1, len(LABELS)]}]
            return self.send_json({"name": "tiny", "inputs": inputs, "outputs": outputs})
        self.send_json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.answer:
            return self.answer(self)
        if self.infer_error:
            return self.send_json({"error": "out of memory\nTraceback..."}, self.infer_error)
        [tensor] = json.loads(body)["inputs"]
        values = np.array(tensor["data"], np.float32).reshape(tensor["shape"])
        batch = (self.metadata_shape or [-1])[0]
        if batch > 0 and len(values) != batch:
            return self.send_json({"error": f"a batch of {len(values)}, not {batch}"}, 400)
        if self.layout == "NCHW":
            values = values.transpose(0, 2, 3, 1)
        if self.swap_channels:
            values = values[..., ::-1]
        logits = values.mean(axis=(1, 2)) @ (np.eye(3, dtype=np.float32) * 10)
        output = {"name": "logits", "datatype": "FP32", "shape": list(logits.shape)}
        output["data"] = logits.ravel().tolist()
        if self.mangle:
            self.mangle(output)
        self.send_json({"outputs": [output]})

    def send_json(self, document, status: int = 200) -> None:
        self.send_body(json.dumps(document).encode(), status)

    def send_body(self, body: bytes, status: int = 200, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def endpoint(**behaviour) -> Iterator[str]:
    """An ``Endpoint`` (its class attributes replaced by ``behaviour``) on a loopback port."""
    for name in ("answer", "mangle"):  # functions, not methods
        if name in behaviour:
            behaviour[name] = staticmethod(behaviour[name])
    handler = type("Behaving", (Endpoint,), behaviour)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_an_endpoint_answering_logits_in_json_verifies(capsys, tiny):
    with endpoint() as url:
        status, out, err = verify(capsys, str(tiny), "--endpoint", url)
    assert status == 0, err
    assert "through x (FP32, NHWC) in JSON: top-5 identical" in out
    # the tiny file has no logits output: the endpoint's logits are compared by their softmax
    assert "it answers logits, max |diff| of probabilities" in out and "labels not seen" in out


def test_logits_are_compared_with_the_references_logits(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")

    def with_logits(card: dict) -> None:
        card["outputs"]["logits"] = "logits"

    reference = write_tiny_onnx(tmp_path / "tiny.onnx", with_logits)
    model = onnx.load(reference)  # the graph's own logits, an output too
    logits = onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 3])
    model.graph.output.append(logits)
    onnx.save(model, reference)
    with endpoint() as url:
        status, out, err = verify(capsys, str(reference), "--endpoint", url)
    assert status == 0, err
    assert "it answers logits, max |diff| of logits" in out and "of their scale" in out


@pytest.mark.slow
def test_an_endpoint_taking_nchw_values_gets_them(capsys, tiny):
    with endpoint(layout="NCHW") as url:
        status, out, err = verify(capsys, str(tiny), "--endpoint", url)
    assert status == 0 and "x (FP32, NCHW)" in out, err


def test_an_endpoint_taking_one_batch_size_gets_only_that(capsys, tiny):
    with endpoint(metadata_shape=[4, *SIZE, 3]) as url:  # 6 photos: 4, then 2 and 2 repeated
        status, out, err = verify(capsys, str(tiny), "--endpoint", url, "--json")
    document = json.loads(out)
    assert status == 0 and document["passed"], err
    [compared] = document["inputs"].values()
    assert compared["batch_sizes"] == [4] and compared["images"] == len(PHOTOS)
    assert len(compared["checks"]) == len(PHOTOS)


@pytest.mark.slow
def test_the_wrong_preprocessing_is_caught_naming_the_photo_and_both_top5s(capsys, tiny):
    with endpoint(swap_channels=True) as url:  # another model's preprocessing: BGR
        status, _, err = verify(capsys, str(tiny), "--endpoint", url)
    line = one_line(err)
    assert status == 1 and "disagrees with" in line and "(input x (FP32, NHWC), batch 1)" in line
    assert any(f"on {p} " in line for p in PHOTOS)
    reference, served = (part.split("]")[0] for part in line.split("top-5 [")[1:3])
    assert reference != served and sorted(reference.split(", ")) == sorted(served.split(", "))


def hostile(capsys, tiny, url: str) -> str:
    """``zoo verify`` against ``url``: its one line, checked to come in time with status 1."""
    started = time.monotonic()
    status, out, err = verify(capsys, str(tiny), "--endpoint", url, "--timeout", str(TIMEOUT_S))
    elapsed = time.monotonic() - started
    assert status == 1 and out == "" and elapsed < TIMEOUT_S + MARGIN_S, (elapsed, err)
    return one_line(err)


def test_nothing_listening(capsys, tiny):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "connection refused" in hostile(capsys, tiny, f"http://127.0.0.1:{port}")


@pytest.mark.slow
def test_a_server_that_accepts_and_never_answers(capsys, tiny):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel accepts; nobody reads or writes
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert f"no answer within {TIMEOUT_S:g} s" in hostile(capsys, tiny, url)


@pytest.mark.slow
def test_a_server_that_trickles_its_answer_is_cut_off_at_the_timeout(capsys, tiny):
    def trickle(handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        with contextlib.suppress(OSError):
            for _ in range(100):  # a header byte every 0.1 s: each read is quick, the sum not
                handler.wfile.write(b"X")
                handler.wfile.flush()
                time.sleep(0.1)

    with endpoint(answer=trickle) as url:
        assert f"no answer within {TIMEOUT_S:g} s" in hostile(capsys, tiny, url)


@pytest.mark.slow
def test_a_200_with_invalid_json(capsys, tiny):
    with endpoint(answer=lambda h: h.send_body(b"{not json\x1b[31m")) as url:
        line = hostile(capsys, tiny, url)
    assert line.endswith("/v2: answered invalid JSON: {not json\\x1b[31m")


@pytest.mark.slow
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_100_mb_body(capsys, tiny, declared):
    size = 100 * 1024 * 1024

    def flood(handler) -> None:
        handler.send_response(200)
        if declared:
            handler.send_header("Content-Length", str(size))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b"[" * 1024 * 1024
        with contextlib.suppress(OSError):
            for _ in range(size // len(chunk)):
                handler.wfile.write(chunk)

    with endpoint(answer=flood) as url:
        line = hostile(capsys, tiny, url)
    if declared:
        assert f"a body of {size:,} bytes; at most {MAX_BODY_BYTES:,} are read" in line
    else:
        assert f"a body of more than {MAX_BODY_BYTES:,} bytes; not read" in line


@pytest.mark.slow
def test_metadata_declaring_another_shape(capsys, tiny):
    with endpoint(metadata_shape=[-1, 5, 5, 3]) as url:
        line = hostile(capsys, tiny, url)
    assert "input x FP32 [-1, 5, 5, 3] does not fit the model, which takes [N, 4, 4, 3]" in line


@pytest.mark.slow
def test_a_5xx(capsys, tiny):
    with endpoint(infer_error=503) as url:
        line = hostile(capsys, tiny, url)
    assert line.endswith("/v2/models/tiny/infer: HTTP 503: out of memory\\nTraceback...")


def _nan(output: dict) -> None:
    output["data"][0] = float("nan")


def _two_classes(output: dict) -> None:
    output["shape"][1], output["data"] = 2, output["data"][: output["shape"][0] * 2]


def _renamed(output: dict) -> None:
    output["name"] = "scores"


def _too_few(output: dict) -> None:
    output["data"] = output["data"][:-1]


@pytest.mark.parametrize(
    ("mangle", "said"),
    [
        (_nan, "it answered NaN or infinity for cat.jpg (batch 1)"),
        (_two_classes, "output 'logits' came back of shape [1, 2] for 1 photos; the model has 3"),
        (_renamed, "its answer has no output 'logits' (it has ['scores'])"),
        (_too_few, "output logits: 2 values for shape [1, 3]"),
    ],
    ids=["nan", "two-classes", "renamed", "too-few"],
)
def test_answers_that_are_not_answers(capsys, tiny, mangle, said):
    with endpoint(mangle=mangle) as url:
        assert said in hostile(capsys, tiny, url)


def test_a_reduced_precision_reference_is_refused(capsys, tiny, tmp_path):
    def int8(card: dict) -> None:
        card["precision"] = "int8"

    reference = write_tiny_onnx(tmp_path / "int8.onnx", int8)
    with endpoint() as url:
        status, _, err = verify(capsys, str(reference), "--endpoint", url)
    assert status == 1 and "computes in int8; give the float32 export" in one_line(err)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--endpoint-model", "x"], "go with --endpoint URL"),
        (["--endpoint", "ftp://host/"], "ftp://host/: not an http:// or https:// URL"),
        (["--endpoint", "http://host:port/"], "not a valid port"),
        (["--endpoint", "http://127.0.0.1:1/", "--reference", "other.onnx"], "leave --reference"),
        (["--endpoint", "http://127.0.0.1:1/", "--weights", "none"], "the reference here is a"),
        (["--endpoint", "http://127.0.0.1:1/", "--backends", "onnx"], "leave them out with"),
    ],
)
def test_options_that_do_not_go_together(capsys, tiny, args, said):
    status, _, err = verify(capsys, str(tiny), *args)
    assert status == 1 and said in one_line(err)


@pytest.mark.slow
def test_a_redirect_to_another_host_is_not_followed(capsys, tiny):
    asked: list[str] = []

    def elsewhere(handler) -> None:
        asked.append(handler.headers["Host"])
        port = handler.server.server_address[1]
        where = [("Location", f"http://127.0.0.2:{port}/v2")]
        handler.send_body(b"", 302, where)

    with endpoint(answer=elsewhere) as url:
        line = hostile(capsys, tiny, url)
    assert "redirects (302) to another host, http://127.0.0.2:" in line
    assert "not followed" in line and len(asked) == 1


@pytest.mark.slow
def test_a_redirect_on_the_same_host_is_followed(capsys, tiny):
    def moved(handler) -> None:
        if handler.path.startswith("/old"):
            return handler.send_body(b"", 307, [("Location", handler.path.removeprefix("/old"))])
        handler.send_json({"name": "moved here", "extensions": []})

    with endpoint(answer=moved) as url:
        client = OipClient(url, 5)
        assert client.get_json("/old/v2")["name"] == "moved here"


# MLServer, KServe and Triton, each from its own virtual environment (tests/oip_servers.py).


@pytest.fixture(scope="module")
def permuted(tiny, tmp_path_factory) -> Path:
    """The tiny model with its classes in another order (its labels as they were)."""
    matrix = (np.eye(3) * 10)[:, [2, 0, 1]]
    return write_tiny_onnx(tmp_path_factory.mktemp("permuted") / "tiny.onnx", matrix=matrix)


@pytest.fixture(scope="module")
def int8(tiny, tmp_path_factory) -> Path:
    """The tiny model quantized to int8 (weights and activations), still saying fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = tmp_path_factory.mktemp("int8") / "tiny.int8.onnx"
    quantize_dynamic(tiny, path, weight_type=QuantType.QInt8)
    return path


def caught(capsys, tiny, url: str, model: str) -> str:
    """The wrong deployment ``model`` at ``url``, caught: exit 1, one line naming a photo and
    the reference's and the endpoint's top-5."""
    status, out, err = verify(capsys, str(tiny), "--endpoint", url, "--endpoint-model", model)
    line = one_line(err)
    assert status == 1 and out == "", err
    assert f"model {model!r} disagrees with {tiny} on ONNX Runtime" in line
    assert any(f"on {p} " in line for p in PHOTOS)
    assert "reference top-5 [" in line and "endpoint top-5 [" in line
    return line


@pytest.mark.slow
def test_mlserver_verifies_and_another_models_preprocessing_is_caught(capsys, tiny, tmp_path):
    from .oip_servers import mlserver

    models = {"tiny": (tiny, "unit"), "tiny-bgr": (tiny, "bgr")}
    with mlserver(tmp_path, models) as server:
        status, out, err = verify(capsys, str(tiny), "--endpoint", server.url)
        assert status == 0, err
        assert "through image_bytes (BYTES) in JSON: top-5 identical" in out
        line = caught(capsys, tiny, server.url, "tiny-bgr")
    reference, served = (part.split("]")[0] for part in line.split("top-5 [")[1:3])
    assert reference != served


@pytest.mark.slow
def test_kserve_verifies_and_classes_in_another_order_are_caught(capsys, tiny, permuted, tmp_path):
    from .oip_servers import kserve

    with kserve(tmp_path, {"tiny": tiny, "tiny-permuted": permuted}) as server:
        status, out, err = verify(capsys, str(tiny), "--endpoint", server.url)
        assert status == 0, err
        assert "through image (UINT8, NHWC)" in out and "top-5 identical" in out
        line = caught(capsys, tiny, server.url, "tiny-permuted")
    reference, served = (part.split("]")[0] for part in line.split("top-5 [")[1:3])
    assert reference != served


@pytest.mark.slow
def test_triton_verifies_and_an_int8_file_served_as_fp32_is_caught(capsys, tiny, int8, tmp_path):
    from .oip_servers import triton

    with triton(tmp_path, {"tiny": tiny, "tiny-int8": int8}) as server:
        status, out, err = verify(capsys, str(tiny), "--endpoint", server.url)
        assert status == 0, err
        assert "through image (FP32, NHWC) in binary: top-5 identical" in out
        assert "labels checked (classification extension)" in out
        line = caught(capsys, tiny, server.url, "tiny-int8")
    assert "max |diff| of probabilities" in line


def _answer(body: bytes, header_length: int | None = None) -> Answer:
    headers = email.message_from_string(
        "" if header_length is None else f"{HEADER_LENGTH}: {header_length}\n\n",
        _class=http.client.HTTPMessage,
    )
    return Answer(200, headers, body)


def _tensor(**fields) -> bytes:
    output = {"name": "p", "datatype": "FP32", "shape": [1, 3], **fields}
    return json.dumps({"outputs": [output]}).encode()


def test_answers_in_binary_and_json_are_read():
    scores = np.array([[0.25, 0.5, 0.25]], np.float32)
    header = _tensor(parameters={"binary_data_size": 12})
    [binary] = parse_answer(_answer(header + scores.tobytes(), len(header)), "u").values()
    [nested] = parse_answer(_answer(_tensor(data=[[0.25, 0.5, 0.25]])), "u").values()
    assert np.array_equal(binary.data, scores) and np.array_equal(nested.data, scores)
    labels = b"".join(struct.pack("<I", len(e)) + e for e in (b"0.5:1:green", b"0.25:0:red"))
    header = _tensor(datatype="BYTES", shape=[1, 2], parameters={"binary_data_size": len(labels)})
    [classified] = parse_answer(_answer(header + labels, len(header)), "u").values()
    assert classified.data == [b"0.5:1:green", b"0.25:0:red"]


@pytest.mark.parametrize(
    ("body", "header_length", "said"),
    [
        (_tensor(parameters={"binary_data_size": 12}), 10**6, "is not a length within the body"),
        (_tensor(parameters={"binary_data_size": 12}) + b"\0" * 8, -1, "overruns the body"),
        (_tensor(parameters={"binary_data_size": 8}) + b"\0" * 8, -1, "8 bytes, not 3 FP32"),
        (_tensor(parameters={"binary_data_size": 12}) + b"\0" * 16, -1, "4 bytes left after"),
        (_tensor(datatype="BYTES", parameters={"binary_data_size": 4}) + b"\xff" * 4, -1, "ends"),
        (_tensor(data=[1, 2]), None, "2 values for shape [1, 3]"),
        (_tensor(data=["a", "b", "c"]), None, "FP32 data that is not numbers"),
        (_tensor(shape=[1, -3], data=[]), None, "is not a list of sizes"),
        (_tensor(datatype="FP99", data=[1, 2, 3]), None, "unknown datatype FP99"),
        (json.dumps({"outputs": {"p": 1}}).encode(), None, "the answer has no list of outputs"),
    ],
)
def test_answers_that_do_not_add_up_are_refused(body, header_length, said):
    if header_length == -1:  # the JSON's own length
        header_length = body.index(b"}]}") + 3
    with pytest.raises(EndpointError, match=re.escape(said)):
        parse_answer(_answer(body, header_length), "u")
