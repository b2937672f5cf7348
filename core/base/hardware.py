"""What this machine computes on: the CPU's instruction-set class, and the NVIDIA GPU if any.

The CPU class names the integer kernels ONNX Runtime picks for an int8 model, because they do
not all compute the same numbers: on x86 without VNNI (``avx2``, ``avx512``, ``sse4``) u8 x s8
products are added in pairs into saturating int16s; ``avx512_vnni``, ``avx_vnni`` (VNNI on
AVX2-class cores) and ``arm64`` accumulate in int32. An int8 file verified on one class is
re-verified on another (``zoo verify``).

The GPU is looked for without CUDA: an NVIDIA driver shows itself as ``/dev/nvidia*`` device
nodes and ``/proc/driver/nvidia`` on Linux, as ``nvcuda.dll`` on Windows. Where there is none,
zoo runs on the CPU without trying CUDA, and so without a line about it.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import glob
import io
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SATURATING_CLASSES = frozenset({"sse4", "avx2", "avx512"})
"""x86 classes whose u8 x s8 kernels (``PMADDUBSW``/``VPMADDUBSW``) saturate int16 pair sums."""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the Linux kernel lists them (x86 ``flags``, Arm
    ``Features``); elsewhere, the x86 ones NumPy detects at run time, under the same names."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return _numpy_flags()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


_NUMPY_NAMES = {
    "AVX512VNNI": "avx512_vnni",
    "AVX512BW": "avx512bw",
    "AVX2": "avx2",
    "SSE41": "sse4_1",
}
"""NumPy's names of the features that decide the class (it does not detect AVX-VNNI)."""


def _numpy_flags() -> frozenset[str]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return frozenset()
    return frozenset(name for key, name in _NUMPY_NAMES.items() if features.get(key))


def cpu_class(flags: frozenset[str] | None = None, machine: str | None = None) -> str:
    """The instruction-set class that decides ONNX Runtime's int8 kernels here (or for the
    given ``flags`` and ``machine``): avx512_vnni, avx_vnni, avx512, avx2, sse4, x86_64,
    arm64, or the machine name for anything else."""
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    if machine not in ("x86_64", "amd64"):
        return machine or "unknown"
    flags = cpu_flags() if flags is None else flags
    for name, needed in (
        ("avx512_vnni", "avx512_vnni"),
        ("avx_vnni", "avx_vnni"),
        ("avx512", "avx512bw"),
        ("avx2", "avx2"),
        ("sse4", "sse4_1"),
    ):
        if needed in flags:
            return name
    return "x86_64"


def onnxruntime_version() -> str | None:
    """The installed ONNX Runtime's version, without importing it (None: not installed)."""
    from importlib import metadata

    for distribution in ("onnxruntime-gpu", "onnxruntime"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA driver and device are present (not whether CUDA can use them)."""
    if sys.platform == "win32":
        return ctypes.util.find_library("nvcuda") is not None
    return Path("/proc/driver/nvidia/version").exists() or bool(glob.glob("/dev/nvidia[0-9]*"))


def preload_cuda(ort) -> None:
    """Load the CUDA and cuDNN libraries that the ``gpu`` extra's NVIDIA wheels install, before
    a CUDA session is created (``onnxruntime.preload_dlls``, ONNX Runtime 1.21+). Its messages
    go to stdout, which belongs to zoo's output: they are dropped, and a library that still
    does not load shows in the one line about CUDA that ``open_session`` prints."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        preload()


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str | None


def nvidia_gpus() -> list[Gpu]:
    """The NVIDIA GPUs and driver version, from ``nvidia-smi`` (installed with the driver);
    empty where there is none or it does not answer."""
    if not has_nvidia_gpu() or shutil.which("nvidia-smi") is None:
        return []
    try:
        answer = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in answer.splitlines():
        name, _, driver = line.partition(",")
        if name.strip():
            gpus.append(Gpu(name.strip(), driver.strip() or None))
    return gpus


def cuda_runtime_version() -> str | None:
    """The CUDA version ONNX Runtime was built against (GPU builds), e.g. "13.0"."""
    try:
        from onnxruntime.capi import build_and_package_info
    except ImportError:
        return None
    return getattr(build_and_package_info, "cuda_version", None) or None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(providers: list[str], available: list[str] | None = None) -> str:
    """One phrase for where a session runs, for ``zoo bench`` and ``zoo serve``'s start line:
    the GPU model, driver and CUDA runtime, or the CPU and why not a GPU.

    ``providers``: the session's execution providers, best first; ``available``: those of this
    ONNX Runtime build (``onnxruntime.get_available_providers()``).
    """
    if providers and providers[0] == "CUDAExecutionProvider":
        gpus = nvidia_gpus()
        name = gpus[0].name if gpus else "NVIDIA GPU"
        facts = []
        if gpus and gpus[0].driver:
            facts.append(f"driver {gpus[0].driver}")
        if runtime := cuda_runtime_version():
            facts.append(f"CUDA {runtime}")
        return f"{name} ({', '.join(facts)})" if facts else name
    cpu = f"CPU ({cpu_name()}, {cpu_class()})"
    if not has_nvidia_gpu():
        return f"{cpu}: no NVIDIA GPU"
    if available is not None and "CUDAExecutionProvider" not in available:
        return f"{cpu}: this ONNX Runtime has no CUDA provider (pip install 'zoo[gpu]')"
    return f"{cpu}: CUDA not used (--provider cpu, or it failed to load)"


def model_device(model) -> str:
    """``describe_device`` for a loaded ``zoo.Model``: its ONNX Runtime session's providers,
    or, for Keras, the GPU TensorFlow sees or the CPU."""
    session = getattr(model.runner, "session", None)
    if session is not None:
        import onnxruntime

        return describe_device(session.get_providers(), onnxruntime.get_available_providers())
    tensorflow = sys.modules.get("tensorflow")
    gpus = tensorflow.config.list_physical_devices("GPU") if tensorflow else []
    if gpus:
        found = nvidia_gpus()
        return f"{found[0].name if found else gpus[0].name} (TensorFlow)"
    return describe_device(["CPUExecutionProvider"])
