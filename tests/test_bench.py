"""``zoo bench``: latency and throughput per backend and batch size."""

from __future__ import annotations

import json

import pytest

import zoo.base.hardware

from .conftest import run_zoo


@pytest.mark.slow
def test_bench_json_has_every_backend_and_batch(tmp_path):
    result = run_zoo(
        "bench", "mobilenet", "--weights", "none", "--batch-sizes", "1,4", "--runs", "3",
        "--provider", "cpu", "--json",
        env={"ZOO_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["machine"]["cores"] >= 1 and "numpy" in report["machine"]["libraries"]
    assert report["machine"]["cpu_class"] == zoo.base.hardware.cpu_class()
    assert all(r["device"] for r in report["results"])  # the GPU, or the CPU and why
    rows = report["results"]
    assert [(r["backend"], r["batch"]) for r in rows] == [
        ("keras", 1),
        ("keras", 4),
        ("onnx", 1),
        ("onnx", 4),
    ]
    for row in rows:
        assert set(row) == {
            "model",
            "backend",
            "precision",
            "batch",
            "p50_ms",
            "p95_ms",
            "images_per_s",
            "device",
        }
        assert row["model"] == "mobilenet" and row["precision"] == "fp32"
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["p50_ms"] * 1000)


@pytest.mark.slow
def test_bench_table_shows_the_ratio_to_keras(tmp_path):
    result = run_zoo(
        "bench", "mobilenet", "--weights", "none", "--batch-sizes", "2", "--runs", "3",
        "--provider", "cpu", env={"ZOO_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, keras_device, onnx_device, columns, keras, onnx = result.stdout.splitlines()
    assert "cores" in header and "numpy" in header
    # Where each backend ran: here the CPU, and why not a GPU.
    assert keras_device.startswith("keras: ") and onnx_device.startswith("onnx: CPU (")
    assert "GPU" in onnx_device or "CUDA" in onnx_device
    assert columns.split()[-2:] == ["VS", "KERAS"]
    assert keras.split()[:4] == ["mobilenet", "keras", "fp32", "2"] and keras.endswith("1.00x")
    assert onnx.split()[:4] == ["mobilenet", "onnx", "fp32", "2"] and onnx.endswith("x")
