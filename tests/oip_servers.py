"""MLServer, KServe's ModelServer and Triton Inference Server serving the tiny test model on
loopback, each from its own virtual environment under ``$ZOO_OIP_SERVERS`` (default
/tmp/zoo-oip-servers; ``.ci/oip-servers DIR`` installs them), with the model code in
``oip_deployments/``. A server that is not installed skips its test with one line."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from zoo.exporters.triton import CONFIG_FILE, LABELS_FILE, MODEL_FILE, VERSION, model_config
from zoo.runtime.onnx_file import load_onnx

SERVERS = Path(os.environ.get("ZOO_OIP_SERVERS", "/tmp/zoo-oip-servers"))
DEPLOYMENTS = Path(__file__).resolve().parent / "oip_deployments"
START_TIMEOUT_S = 120


def venv(name: str) -> Path:
    """The server's virtual environment, or a skip saying how to install it."""
    folder = SERVERS / name
    if not (folder / ".installed").exists():
        pytest.skip(f"{name} is not installed in {folder} (.ci/oip-servers {SERVERS} installs it)")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server in a subprocess (its own process group), ready once entered: each model's
    ``/v2/models/NAME/ready`` answers 200 (MLServer says the server is ready before its models
    are). Stopped, with everything it started, on leaving."""

    def __init__(self, name: str, command: list[str], port: int, log: Path, env: dict, models):
        self.name, self.command, self.port, self.log, self.env = name, command, port, log, env
        self.models = list(models)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"{self.name} did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        return all(self._answers(f"/v2/models/{name}/ready") for name in self.models)

    def _answers(self, path: str) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _python_env(folder: Path, **extra: str) -> dict:
    return {
        "PYTHONPATH": str(DEPLOYMENTS),
        "PATH": f"{folder / 'bin'}:{os.environ['PATH']}",
        **extra,
    }


def mlserver(work: Path, models: dict[str, tuple[Path, str]]) -> Server:
    """MLServer's custom runtime (``mlserver_model.py``), one model per name: its .onnx file
    and its preprocessing (``tiny_runtime.preprocess``). BYTES in, as the metadata declares."""
    folder = venv("mlserver")
    port = free_port()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    settings["parallel_workers"] = 0  # the models in the server's own process: starts faster
    _write_json(work / "settings.json", settings)
    for name, (onnx, preprocessing) in models.items():
        _write_json(
            work / name / "model-settings.json",
            {
                "name": name,
                "implementation": "mlserver_model.TinyClassifier",
                "parameters": {
                    "uri": str(onnx.resolve()),
                    "extra": {"preprocessing": preprocessing},
                },
                "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
            },
        )
    command = [str(folder / "bin" / "mlserver"), "start", str(work)]
    return Server("MLServer", command, port, work / "mlserver.log", _python_env(folder), models)


def kserve(work: Path, models: dict[str, Path]) -> Server:
    """KServe's ModelServer with ``kserve_model.py``, one model per name: UINT8 pixels in."""
    folder = venv("kserve")
    port = free_port()
    command = [str(folder / "bin" / "python"), str(DEPLOYMENTS / "kserve_model.py")]
    command += [f"{name}={onnx.resolve()}" for name, onnx in models.items()]
    command += ["--http_port", str(port), "--grpc_port", str(free_port()), "--workers", "1"]
    return Server("KServe", command, port, work / "kserve.log", _python_env(folder), models)


def triton(work: Path, models: dict[str, Path]) -> Server:
    """``tritonserver`` from the nvidia-pytriton wheel, each .onnx file in a model repository
    as ``zoo export --triton`` lays it out (its config.pbtxt, labels.txt), run on ONNX Runtime
    by ``triton_model.py`` behind Triton's Python backend (the wheel's tritonserver has no ONNX
    Runtime backend): the graph's own input, preprocessed FP32."""
    folder = venv("triton")
    [site] = (folder / "lib").glob("python3.*/site-packages")
    dist = site / "pytriton" / "tritonserver"
    for name, onnx in models.items():
        _triton_entry(work / "repository" / name, name, onnx)
    # The Python backend with the stub for this Python, as pytriton itself assembles it.
    backend = work / "backends" / "python"
    backend.mkdir(parents=True)
    for part in (dist / "backends" / "python").iterdir():
        (backend / part.name).symlink_to(part)
    version = folder.joinpath("bin", "python").resolve().name.removeprefix("python")
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        pytest.skip(f"the nvidia-pytriton wheel has no Python backend stub for Python {version}")
    shutil.copy(stub, backend / stub.name)
    port = free_port()
    command = [str(dist / "bin" / "tritonserver"), f"--model-repository={work / 'repository'}"]
    command += [f"--backend-directory={work / 'backends'}", f"--http-port={port}"]
    command += ["--allow-grpc=false", "--allow-metrics=false"]
    env = {
        "LD_LIBRARY_PATH": str(site / "nvidia_pytriton.libs"),  # the stub's CUDA runtime
        "PYTHONPATH": str(site),
        "PATH": f"{folder / 'bin'}:{os.environ['PATH']}",
    }
    return Server("Triton", command, port, work / "triton.log", env, models)


def _triton_entry(entry: Path, name: str, onnx: Path) -> None:
    (entry / VERSION).mkdir(parents=True)
    shutil.copy(onnx, entry / VERSION / MODEL_FILE)
    # the stub finds the model's code in its own folder, not on PYTHONPATH
    shutil.copy(DEPLOYMENTS / "triton_model.py", entry / VERSION / "model.py")
    shutil.copy(DEPLOYMENTS / "tiny_runtime.py", entry / VERSION / "tiny_runtime.py")
    card = load_onnx(onnx, provider="cpu").card
    config = model_config(name, onnx, card).replace(
        'platform: "onnxruntime_onnx"', 'backend: "python"'
    )
    (entry / CONFIG_FILE).write_text(config + "instance_group [ { kind: KIND_CPU } ]\n")
    (entry / LABELS_FILE).write_text("".join(f"{label}\n" for _, label in card.input.labels))


def _python_env(folder: Path) -> dict:
    return {"PYTHONPATH": str(DEPLOYMENTS), "PATH": f"{folder / 'bin'}:{os.environ['PATH']}"}


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
