"""``zoo serve`` on the Open Inference Protocol, driven by Triton's own client
(``tritonclient.http``): health, metadata, inference in JSON and binary, the top-K labels,
and refusals. Against the tiny model, except the real MobileNet's classes of real photos."""

from __future__ import annotations

import http.client
import json
import re
import struct
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

import zoo
from zoo.base.hardware import onnxruntime_version

from .conftest import REPO, run_zoo
from .serving import ServeProcess
from .tiny_onnx import LABELS, SIZE, write_tiny_onnx

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

SAMPLES = resources.files("zoo").joinpath("data/samples")
CAT = SAMPLES.joinpath("cat.jpg").read_bytes()
PARROT = SAMPLES.joinpath("parrot.jpg").read_bytes()
INFER = "/v2/models/tiny/infer"
# Several animals in one photo: the top-1 flips between close classes with the resize filter.
AMBIGUOUS = {"tflite_support_cats_and_dogs.jpg"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-v2") / "serve.log"
    with ServeProcess(str(tiny), "--provider", "cpu", "--max-queue", "16", log=log) as s:
        yield s


@pytest.fixture
def client(server):
    triton = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    yield triton
    triton.close()


def encoded_images(*blobs: bytes):
    images = np.array(blobs, dtype=object)
    tensor = httpclient.InferInput("image_bytes", [len(blobs)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=True)
    return tensor


def pixels_of(tiny, *blobs: bytes) -> np.ndarray:
    """The images as zoo decodes them for the model: (N, 4, 4, 3) uint8."""
    from zoo.runtime.images import decode_to_size, open_lazily

    model = zoo.load(tiny, backend="onnx", provider="cpu")
    return np.stack([decode_to_size(open_lazily(b, "x"), "x", model.input) for b in blobs])


@pytest.mark.slow
def test_health_and_server_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("tiny")
    assert client.is_model_ready("tiny", "1")
    assert not client.is_model_ready("nope")
    metadata = client.get_server_metadata()
    assert metadata["name"] == "zoo" and metadata["version"] == zoo.__version__
    assert set(metadata["extensions"]) == {"binary_tensor_data", "classification"}


def test_model_metadata_with_and_without_the_version(client):
    metadata = client.get_model_metadata("tiny")
    assert metadata == {
        "name": "tiny",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
            {"name": "image", "datatype": "UINT8", "shape": [-1, *SIZE, 3]},
        ],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]}],
        "parameters": {  # what the served file was checked against (docs/runtimes.md)
            "backend": "onnx",
            "checked_against": "itself: the file is the verified export",
            "precision": "fp32",
            "runtime": f"ONNX Runtime {onnxruntime_version()}",
        },
    }
    assert client.get_model_metadata("tiny", "1") == metadata
    with pytest.raises(InferenceServerException, match="has no version '2'") as refused:
        client.get_model_metadata("tiny", "2")
    assert refused.value.status() == "404"


def test_encoded_images_in_binary_get_the_scores_zoo_predict_gives(client, tiny):
    model = zoo.load(tiny, backend="onnx", provider="cpu")
    want = model.probabilities(pixels_of(tiny, CAT, PARROT))
    output = httpclient.InferRequestedOutput("probabilities", binary_data=True)
    result = client.infer("tiny", [encoded_images(CAT, PARROT)], outputs=[output])
    scores = result.as_numpy("probabilities")
    assert scores.dtype == np.float32 and scores.shape == (2, len(LABELS))
    np.testing.assert_allclose(scores, want, atol=1e-6)
    assert result.get_response()["model_name"] == "tiny"
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 2 * 3 * 4


def test_a_uint8_tensor_in_json_through_the_versioned_route(client, tiny):
    pixels = pixels_of(tiny, CAT, PARROT)
    tensor = httpclient.InferInput("image", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=False)
    output = httpclient.InferRequestedOutput("probabilities", binary_data=False)
    result = client.infer("tiny", [tensor], model_version="1", outputs=[output], request_id="r7")
    response = result.get_response()
    assert response["id"] == "r7" and "parameters" not in response["outputs"][0]
    want = zoo.load(tiny, backend="onnx", provider="cpu").probabilities(pixels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, atol=1e-6)


def test_the_top_k_labels_as_bytes_in_json_and_binary(client, tiny):
    want = zoo.load(tiny, backend="onnx", provider="cpu").top(pixels_probabilities(tiny), 2)
    expected = [[f"{p.score:f}:{p.index}:{p.label}".encode() for p in row] for row in want]
    for binary in (True, False):
        output = httpclient.InferRequestedOutput("probabilities", binary, class_count=2)
        result = client.infer("tiny", [encoded_images(CAT, PARROT)], outputs=[output])
        labels = result.as_numpy("probabilities")
        assert labels.shape == (2, 2)
        got = [[v if isinstance(v, bytes) else v.encode() for v in row] for row in labels]
        assert got == expected, binary


def pixels_probabilities(tiny) -> np.ndarray:
    model = zoo.load(tiny, backend="onnx", provider="cpu")
    return model.probabilities(pixels_of(tiny, CAT, PARROT))


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as refused:
        client.infer("nope", [encoded_images(CAT)])
    assert refused.value.status() == "404"
    with pytest.raises(InferenceServerException) as refused:
        client.get_model_metadata("nope")
    assert refused.value.status() == "404"


def binary_request(images: list[bytes], size_delta: int = 0, prefix_delta: int = 0):
    """A binary infer request's body and its JSON's length; the deltas falsify a size."""
    data = b"".join(struct.pack("<I", len(b) + prefix_delta) + b for b in images)
    document = {
        "inputs": [
            {
                "name": "image_bytes",
                "shape": [len(images)],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(data) + size_delta},
            }
        ]
    }
    header = json.dumps(document).encode()
    return header + data, len(header)


def post(server, path: str, body: bytes, headers: dict[str, str]):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # no hang
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


MALFORMED = {
    # what: (body and its JSON's length, the Inference-Header-Content-Length sent, words)
    "header length past the body": (binary_request([CAT]), lambda n, body: len(body) + 1, "within"),
    "header length inside the JSON": (binary_request([CAT]), lambda n, body: n - 5, "JSON"),
    "header length that is not a number": (binary_request([CAT]), lambda n, body: "12x", "within"),
    "negative header length": (binary_request([CAT]), lambda n, body: "-1", "within"),
    "binary_data_size past the body": (
        binary_request([CAT], size_delta=1),
        None,
        "binary_data_size",
    ),
    "binary_data_size short of the body": (binary_request([CAT], size_delta=-1), None, "follow"),
    "element length past its data": (binary_request([CAT], prefix_delta=1), None, "only"),
    "element length short of its data": (binary_request([CAT], prefix_delta=-1), None, "after"),
    "no header length for binary data": (binary_request([CAT]), lambda n, body: None, "JSON"),
}


@pytest.mark.parametrize("what", MALFORMED)
def test_a_malformed_binary_request_is_a_400_never_a_500_or_a_hang(server, what):
    (body, json_length), header, words = MALFORMED[what]
    sent = json_length if header is None else header(json_length, body)
    headers = {"Content-Type": "application/octet-stream"}
    if sent is not None:
        headers["Inference-Header-Content-Length"] = str(sent)
    status, answer = post(server, INFER, body, headers)
    assert status == 400, answer
    error = json.loads(answer)
    assert set(error) == {"error"} and words in error["error"], error
    good, _ = post(server, INFER, *_good_request())
    assert good == 200


def _good_request():
    body, length = binary_request([CAT])
    return body, {"Inference-Header-Content-Length": str(length)}


def pixels_input(shape: list[int], data: list, datatype: str = "UINT8") -> dict:
    return {"inputs": [{"name": "image", "datatype": datatype, "shape": shape, "data": data}]}


def bytes_input(data: list[str], name: str = "image_bytes") -> dict:
    return {"inputs": [{"name": name, "datatype": "BYTES", "shape": [len(data)], "data": data}]}


HELLO = "aGVsbG8="  # base64 of "hello": not an image
JSON_REFUSALS = [
    # (what, the request, status, words in the error)
    ("no inputs", {"inputs": []}, 400, "one input"),
    ("unknown input", bytes_input([""], name="x"), 400, "unknown input"),
    ("wrong datatype", pixels_input([1, 4, 4, 3], [0], "FP32"), 400, "UINT8"),
    ("wrong size", pixels_input([1, 5, 5, 3], [0] * 75), 400, "[N, 4, 4, 3]"),
    ("too few values", pixels_input([1, 4, 4, 3], [0] * 47), 400, "47 elements"),
    ("values past 255", pixels_input([1, 4, 4, 3], [256] * 48), 400, "0 to 255"),
    ("floats", pixels_input([1, 4, 4, 3], [0.5] * 48), 400, "0 to 255"),
    ("not base64", bytes_input(["@@"]), 400, "base64"),
    ("not an image", bytes_input([HELLO]), 422, "not an image"),
    ("more images than the queue", bytes_input([HELLO] * 17), 413, "--max-queue"),
    (
        "unknown output",
        {**pixels_input([1, 4, 4, 3], [0] * 48), "outputs": [{"name": "logits"}]},
        400,
        "unknown output",
    ),
]


@pytest.mark.parametrize(
    "document, status, words", [c[1:] for c in JSON_REFUSALS], ids=[c[0] for c in JSON_REFUSALS]
)
def test_bad_json_requests_get_a_4xx_json_error(server, document, status, words):
    got, answer = post(server, INFER, json.dumps(document).encode(), {})
    assert got == status, answer
    assert words in json.loads(answer)["error"]


def test_nested_json_data_is_read_like_flat_data(server, tiny):
    pixels = pixels_of(tiny, CAT)
    answers = []
    for data in (pixels.tolist(), pixels.ravel().tolist()):
        tensor = {"name": "image", "datatype": "UINT8", "shape": [1, *SIZE, 3], "data": data}
        status, answer = post(server, INFER, json.dumps({"inputs": [tensor]}).encode(), {})
        assert status == 200, answer
        answers.append(json.loads(answer)["outputs"][0]["data"])
    assert answers[0] == answers[1]


def test_v1_and_v2_share_the_metrics(server, client):
    before = server.metrics()
    client.infer("tiny", [encoded_images(CAT, PARROT)])
    server.post_image("/v1/models/tiny:predict", CAT)
    post(server, INFER, b"{", {})
    after = server.metrics()

    def grew(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    labels = 'model="tiny",version="1"'
    assert grew(f"nv_inference_request_success{{{labels}}}") == 2
    assert grew('nv_inference_request_failure{model="tiny",reason="OTHER",version="1"}') == 1
    assert grew(f"nv_inference_count{{{labels}}}") == 3
    assert 1 <= grew(f"nv_inference_exec_count{{{labels}}}") <= 3
    for name in ("queue", "compute_infer", "request"):
        assert grew(f"nv_inference_{name}_duration_us{{{labels}}}") > 0


@pytest.mark.slow
@pytest.mark.real_weights
def test_real_photos_in_binary_get_their_imagenet_classes(
    mobilenet_weights, shared_images, expected_top5, tmp_path
):
    path = tmp_path / "mobilenet.onnx"
    weights = ("--weights", str(mobilenet_weights))
    exported = run_zoo("export", "mobilenet", *weights, "-o", str(path), "--no-verify")
    assert exported.returncode == 0, exported.stderr
    expected = expected_top5["models"][mobilenet_weights.name]["top5"]
    with ServeProcess(str(path), "--provider", "cpu", log=tmp_path / "serve.log") as server:
        triton = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=60)
        photos = [image.read_bytes() for image in shared_images]
        outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=True)]
        scores = triton.infer("mobilenet", [encoded_images(*photos)], outputs=outputs)
        outputs = [httpclient.InferRequestedOutput("probabilities", class_count=5)]
        labels = triton.infer("mobilenet", [encoded_images(*photos)], outputs=outputs)
        triton.close()
    probabilities = scores.as_numpy("probabilities")
    assert probabilities.shape == (len(photos), 1000)
    tops = labels.as_numpy("probabilities")
    for image, row, top in zip(shared_images, probabilities, tops, strict=True):
        index, _, label, _ = expected[image.name][0]
        if image.name in AMBIGUOUS:
            assert index in np.argsort(-row)[:5], image.name
        else:
            assert row.argmax() == index, image.name
            assert top[0].decode().endswith(f":{index}:{label}"), (image.name, top[0])


@pytest.mark.slow
def test_the_client_snippet_in_the_docs_runs(tiny, tmp_path):
    page = (REPO / "docs" / "serving.md").read_text()
    section = page[page.index("## Open Inference Protocol") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "cat.jpg").write_bytes(CAT)
    log = tmp_path / "serve.log"
    with ServeProcess(f"mobilenet={tiny}", "--provider", "cpu", log=log) as server:
        code = snippet.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    labels = re.findall(r"b'(\d+\.\d{6}):(\d):(\w+)'", result.stdout)
    assert len(labels) == len(LABELS), result.stdout
    assert {(int(index), label) for _, index, label in labels} == {
        (i, label) for i, (_, label) in enumerate(LABELS)
    }
