"""benchmarks/gpu.py: on a machine without a GPU, one line saying so, the CPU rows, exit 0."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo.base.hardware import has_nvidia_gpu

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_gpu_benchmark_runs_the_cpu_rows_where_there_is_no_gpu(tmp_path):
    if has_nvidia_gpu():
        pytest.skip("an NVIDIA GPU is here: the script measures it (minutes), not for CI")
    result = subprocess.run(
        [
            sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--models", "mobilenet",
            "--batches", "1,4", "--runs", "2", "--min-seconds", "0", "--out", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("no usable NVIDIA GPU here (CPU (")
    assert lines[0].endswith("): running the CPU rows only")
    document = json.loads((tmp_path / "gpu.json").read_text())
    assert document["device"].endswith(": no NVIDIA GPU")
    rows = document["inference"]
    assert [(r["model"], r["precision"], r["provider"], r["batch"]) for r in rows] == [
        ("mobilenet", "fp32", "cpu", 1),
        ("mobilenet", "fp32", "cpu", 4),
    ]
    assert all(r["p50_ms"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert document["serving"] == []
    table = (tmp_path / "gpu.md").read_text()
    assert table == "\n".join(lines[1:]) + "\n"  # what it printed, as written
    assert "| mobilenet | fp32 | cpu | 4 |" in table
