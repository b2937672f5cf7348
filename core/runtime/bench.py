"""``zoo bench``: inference latency and throughput per backend and batch size, side by side.

Times the model itself (the backend's runner on a preprocessed batch), not image decoding:
for each backend and batch size, warm-up runs, then timed runs until both ``runs`` runs and
``min_seconds`` are reached; p50/p95 latency and images per second.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata

import numpy as np

from zoo.base.hardware import cpu_class, cpu_flags, model_device, onnxruntime_version
from zoo.runtime.model import Model
from zoo.runtime.preprocessing import preprocess

WARMUP_RUNS = 2
SPEED_FLAGS = frozenset(
    {
        "avx2",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
        "avx_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
        "amx_fp16",
        "asimddp",
        "bf16",
        "i8mm",
        "sve",
    }
)
"""The CPU flags (as ``lscpu`` lists them) that decide which kernels the runtimes pick: int8
dot products (VNNI, AMX, Arm's dot product and i8mm), bf16 and fp16 arithmetic."""


@dataclass
class BenchResult:
    model: str
    backend: str
    precision: str
    batch: int
    p50_ms: float
    p95_ms: float
    images_per_s: float
    device: str = ""
    """Where it ran: the GPU (model, driver, CUDA), or the CPU and why not a GPU."""

    def to_dict(self) -> dict:
        return asdict(self)


def bench(
    model: Model,
    batches: Sequence[int],
    runs: int = 20,
    min_seconds: float = 1.0,
    progress: Callable[[str], None] = lambda message: None,
) -> list[BenchResult]:
    """Time ``model``'s runner at each batch size on random pixels, preprocessed once."""
    results = []
    rng = np.random.default_rng(0)
    device = model_device(model)
    for batch in batches:
        progress(f"{model.name} on {model.backend}, batch {batch}")
        pixels = rng.integers(0, 256, (batch, *model.input_size, 3), dtype=np.uint8)
        inputs = preprocess(pixels, model.preprocessing)
        for _ in range(WARMUP_RUNS):
            model.runner(inputs)
        timings: list[float] = []
        started = time.perf_counter()
        while len(timings) < runs or time.perf_counter() - started < min_seconds:
            run_started = time.perf_counter()
            model.runner(inputs)
            timings.append(time.perf_counter() - run_started)
        p50 = statistics.median(timings)
        p95 = float(np.percentile(timings, 95))
        results.append(
            BenchResult(
                model.name,
                model.backend,
                model.precision,
                batch,
                p50 * 1e3,
                p95 * 1e3,
                batch / p50,
                device,
            )
        )
    return results


def runtime_version(model: Model) -> str:
    """The runtime a loaded model runs on, with its version: "ONNX Runtime 1.31.1",
    "OpenVINO 2026.4.1", "OpenCV DNN 5.1.0", "Keras 3.15.1"."""
    named = getattr(model.runner, "runtime", None)
    if named:
        return named
    if model.backend == "keras":
        return f"Keras {_version('keras')}"
    return f"ONNX Runtime {onnxruntime_version()}"


def machine() -> dict:
    """What the numbers were measured on: CPU, cores, accelerators, library versions."""
    return {
        "cpu": _cpu_name(),
        "cpu_class": cpu_class(),
        "cpu_flags": sorted(cpu_flags() & SPEED_FLAGS),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime_providers": _onnxruntime_providers(),
        "libraries": {
            name: version
            for name in (
                "zoo",
                "numpy",
                "onnxruntime",
                "onnxruntime-gpu",
                "openvino",
                "opencv-python-headless",
                "tensorflow",
                "keras",
            )
            if (version := _version(name))
        },
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _onnxruntime_providers() -> list[str]:
    if "onnxruntime" not in sys.modules:
        return []
    return sys.modules["onnxruntime"].get_available_providers()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
