"""Keras files as people train them, served and run on Ray as any model: a grayscale file
answers ``/v1`` with a photo and ``/v2`` with encoded images and with UINT8 ``[N, h, w, 1]``
pixels (and RGB), a one-sigmoid file (its labels.txt beside it) and an x/255 file stated as
``--preprocess "scale=1/255"`` answer ``/v1``, all as ``zoo predict`` scores them;
``--engine ray`` gives the local records."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from . import keras_file_kinds as kinds
from .conftest import run_zoo
from .serving import ServeProcess

pytestmark = pytest.mark.tensorflow  # every test here builds Keras models


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The grayscale file kept by ``zoo import`` (with x/255 and labels) in a home of its own,
    a photo, and the environment naming that home."""
    folder = tmp_path_factory.mktemp("gray-serve")
    kinds.grayscale(folder / "gray.keras")
    (folder / "labels.txt").write_text("a\nb\nc\n")
    rng = np.random.default_rng(11)
    photo = folder / "photo.png"
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(photo)
    env = {"ZOO_HOME": str(folder / "home")}
    kept = run_zoo("import", str(folder / "gray.keras"), "--preprocess", "unit", env=env)
    assert kept.returncode == 0, kept.stderr
    (folder / "catdog").mkdir()
    kinds.sigmoid(folder / "catdog" / "catdog.keras")
    (folder / "catdog" / "labels.txt").write_text("cats\ndogs\n")
    kinds.unit_rgb(folder / "stated.keras")
    for file, options in [
        ("catdog/catdog.keras", ()),
        ("stated.keras", ("--preprocess", "scale=1/255")),
    ]:
        kept = run_zoo("import", str(folder / file), *options, env=env)
        assert kept.returncode == 0, kept.stderr
    return folder, photo, env


def scores(records: list[dict]) -> list[float]:
    return [e["score"] for e in sorted(records[0]["top"], key=lambda e: e["label"])]


def test_serve_v1_and_v2_take_photos_and_one_channel_pixels(imported, tmp_path, monkeypatch):
    _, photo, env = imported
    monkeypatch.setenv("ZOO_HOME", env["ZOO_HOME"])  # the server's home
    predicted = run_zoo("predict", "gray", str(photo), "--json", "--top", "3", env=env)
    assert predicted.returncode == 0, predicted.stderr
    want = scores(json.loads(predicted.stdout))
    others = {}
    for name in ("catdog", "stated"):
        predicted = run_zoo("predict", name, str(photo), "--json", "--top", "3", env=env)
        assert predicted.returncode == 0, predicted.stderr
        others[name] = json.loads(predicted.stdout)
    with ServeProcess("gray", "catdog", "stated", log=tmp_path / "log") as server:
        photo_bytes = photo.read_bytes()
        status, _, body = server.post_image("/v1/models/gray:predict", photo_bytes, "image/png")
        assert status == 200, body
        np.testing.assert_allclose(scores(body), want, atol=1e-5)
        for name, expected in others.items():
            status, _, body = server.post_image(
                f"/v1/models/{name}:predict", photo_bytes, "image/png"
            )
            assert status == 200, body
            np.testing.assert_allclose(scores(body), scores(expected), atol=1e-5)
        assert {e["label"] for e in others["catdog"][0]["top"]} == {"cats", "dogs"}
        assert sum(e["score"] for e in others["catdog"][0]["top"]) == pytest.approx(1, abs=1e-6)
        status, _, metadata = server.request("GET", "/v2/models/gray")
        assert metadata["inputs"][1]["shape"] == [-1, 16, 16, 1]
        rgb = np.asarray(Image.open(photo).convert("RGB").resize((16, 16), Image.NEAREST))
        gray = np.asarray(Image.fromarray(rgb).convert("L"))[..., None]
        answers = []
        for pixels in (gray, np.repeat(gray, 3, axis=-1)):
            request = {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, *pixels.shape],
                        "data": pixels.flatten().tolist(),
                    }
                ]
            }
            status, _, body = server.request(
                "POST", "/v2/models/gray/infer", json.dumps(request).encode()
            )
            assert status == 200, body
            answers.append(body["outputs"][0]["data"])
        np.testing.assert_allclose(answers[0], answers[1], atol=0)
        np.testing.assert_allclose(answers[0], want, atol=1e-5)
        encoded = base64.b64encode(photo.read_bytes()).decode()
        request = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                               "data": [encoded]}]}  # fmt: skip
        status, _, body = server.request(
            "POST", "/v2/models/gray/infer", json.dumps(request).encode()
        )
        assert status == 200, body
        np.testing.assert_allclose(body["outputs"][0]["data"], want, atol=1e-5)


def test_ray_gives_the_local_records(imported, tmp_path):
    _, photo, env = imported
    output = tmp_path / "gray.onnx"
    exported = run_zoo("export", "gray", "-o", str(output), env=env)
    assert exported.returncode == 0, exported.stderr
    local = run_zoo("predict", str(output), str(photo), "--json", env=env)
    on_ray = run_zoo(
        "predict", str(output), str(photo), "--engine", "ray", "--actors", "1", "--json", env=env
    )
    assert local.returncode == 0 and on_ray.returncode == 0, on_ray.stderr
    assert json.loads(on_ray.stdout)[0]["top"] == json.loads(local.stdout)[0]["top"]
