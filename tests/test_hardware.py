"""The machine an int8 file runs on: CPU classes, the card's ``verified_on``, the warning on
another CPU class, and the choice of execution provider with and without an NVIDIA GPU.

CPU classes and GPUs are simulated (monkeypatch): no test needs a given CPU or a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.base import hardware
from zoo.cli.main import main
from zoo.model.card import METADATA_KEY, ModelCard, VerifiedOn
from zoo.model.input_config import InputConfig
from zoo.model.labels import imagenet_labels
from zoo.model.spec import PreprocessSpec
from zoo.runtime import cpu_check, onnx_file


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ({"sse4_1", "avx2", "avx512bw", "avx512_vnni", "avx_vnni"}, "x86_64", "avx512_vnni"),
        ({"sse4_1", "avx2", "avx_vnni"}, "x86_64", "avx_vnni"),
        ({"sse4_1", "avx2", "avx512f", "avx512bw"}, "x86_64", "avx512"),
        ({"sse4_1", "avx2", "fma"}, "AMD64", "avx2"),
        ({"sse4_1"}, "x86_64", "sse4"),
        (set(), "x86_64", "x86_64"),
        ({"asimd", "asimddp"}, "aarch64", "arm64"),
        (set(), "arm64", "arm64"),
        (set(), "riscv64", "riscv64"),
    ],
)
def test_cpu_class_from_flags(flags, machine, expected):
    assert hardware.cpu_class(frozenset(flags), machine) == expected


def test_without_proc_cpuinfo_the_flags_come_from_numpy():
    flags = hardware._numpy_flags()
    assert flags <= {"avx512_vnni", "avx512bw", "avx2", "sse4_1"}
    if hardware.platform.machine().lower() in ("x86_64", "amd64"):
        assert "sse4_1" in flags  # every x86-64 CPU of the last 15 years


def test_this_cpu_has_a_class():
    assert hardware.cpu_class() in {
        "avx512_vnni", "avx_vnni", "avx512", "avx2", "sse4", "x86_64", "arm64",
    } or hardware.cpu_class() == hardware.platform.machine().lower()  # fmt: skip


VNNI_SERVER = VerifiedOn("avx512_vnni", "1.31.1")


def card(precision="int8", verified_on=VNNI_SERVER, weights="none"):
    config = InputConfig((1, 1000), PreprocessSpec("tf"), imagenet_labels())
    return ModelCard(
        "mobilenet", config, weights, None, "0", 17,
        precision=precision, logits_name=None, verified_on=verified_on,
    )  # fmt: skip


def test_verified_on_travels_in_the_card_and_older_cards_read_without_it():
    written = card()
    document = json.loads(written.to_json())
    assert document["verified_on"] == {"cpu_class": "avx512_vnni", "onnxruntime": "1.31.1"}
    assert ModelCard.from_json(written.to_json()) == written
    del document["verified_on"]  # as zoo wrote cards before it recorded the CPU
    assert ModelCard.from_json(json.dumps(document)).verified_on is None
    assert "verified_on" not in json.loads(card(verified_on=None).to_json())


def tiny_onnx(path: Path, model_card: ModelCard) -> Path:
    """A 3-op graph with a zoo card: (N, 1, 1000, 3) pixels in, 1000 probabilities out."""
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    constant = helper.make_tensor
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"]),
            helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["scores"]),
            helper.make_node("Softmax", ["scores"], ["probabilities"], axis=-1),
        ],
        "tiny",
        [value("image", TensorProto.FLOAT, ["N", 1, 1000, 3])],
        [value("probabilities", TensorProto.FLOAT, ["N", 1000])],
        [
            constant("starts", TensorProto.INT64, [1], [0]),
            constant("ends", TensorProto.INT64, [1], [1000]),
            constant("axes", TensorProto.INT64, [1], [1]),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    helper.set_model_props(proto, {METADATA_KEY: model_card.to_json()})
    onnx.save(proto, str(path))
    return path


@pytest.fixture
def on_cpu(monkeypatch):
    """Run as if on a CPU of the given class; each test starts with no warning given."""
    monkeypatch.setattr(cpu_check, "_warned", set())

    def simulate(name: str) -> None:
        monkeypatch.setattr(hardware, "cpu_class", lambda *args: name)

    return simulate


def test_an_int8_file_on_another_cpu_class_warns_once_in_one_line(tmp_path, on_cpu, capsys):
    path = tiny_onnx(tmp_path / "m.onnx", card())
    on_cpu("avx2")
    zoo.load(path, provider="cpu")
    zoo.load(path, provider="cpu")
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"zoo: warning: {path} (int8) was verified on an avx512_vnni CPU and runs on avx2, "
        f"whose int8 kernels saturate where VNNI ones do not: run 'zoo verify mobilenet {path}' "
        "here"
    )


def test_the_warning_names_the_weights_file_to_verify_with(tmp_path, on_cpu):
    path = tmp_path / "m.onnx"
    on_cpu("arm64")
    message = cpu_check.verified_elsewhere(card(weights="mine.h5"), path)
    assert message.endswith(f"run 'zoo verify mobilenet {path} --weights mine.h5' here")
    assert "whose int8 kernels differ" in message


@pytest.mark.parametrize(
    ("model_card", "here"),
    [
        (card(), "avx512_vnni"),  # where it was verified
        (card(precision="fp32"), "avx2"),  # float32 computes the same everywhere
        (card(precision="fp16"), "avx2"),
        (card(verified_on=None), "avx2"),  # exported before zoo recorded the CPU
    ],
)
def test_no_warning_where_it_does_not_apply(tmp_path, on_cpu, capsys, model_card, here):
    path = tiny_onnx(tmp_path / "m.onnx", model_card)
    on_cpu(here)
    zoo.load(path, provider="cpu")
    assert capsys.readouterr().err == ""


def test_zoo_predict_warns_once_then_predicts(tmp_path, on_cpu, capsys, photo):
    path = tiny_onnx(tmp_path / "m.onnx", card(precision="int8-vnni"))
    on_cpu("avx2")
    assert main(["predict", str(path), str(photo), "--provider", "cpu", "--top", "1"]) == 0
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"zoo: warning: {path} (int8-vnni) was verified on an avx512_vnni")
    assert captured.out.strip()  # the prediction


def test_reverified_line_says_whether_it_still_passes(on_cpu):
    on_cpu("avx2")
    assert cpu_check.reverified_line(card(), True) == (
        "measured again on this avx2 CPU (exported and verified on avx512_vnni): still passes here"
    )
    assert cpu_check.reverified_line(card(), False).endswith("no longer passes here")
    on_cpu("avx512_vnni")
    assert cpu_check.reverified_line(card(), True) is None


# Execution providers ------------------------------------------------------------------------


@pytest.fixture
def preloads(monkeypatch) -> list:
    """Calls of ``onnxruntime.preload_dlls`` (the gpu extra's library loader), recorded."""
    import onnxruntime

    calls: list = []
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda *a, **k: calls.append(a), raising=False)
    return calls


def cuda_build() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime build has no CUDA provider")


def test_auto_without_an_nvidia_gpu_is_the_cpu_silently(tmp_path, monkeypatch, capsys, preloads):
    cuda_build()
    monkeypatch.setattr(onnx_file, "has_nvidia_gpu", lambda: False)
    path = tiny_onnx(tmp_path / "m.onnx", card(precision="fp32"))
    session = onnx_file.open_session(path, "auto")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert capsys.readouterr().err == ""
    assert preloads == []  # CUDA's libraries are not even loaded


def test_auto_with_a_gpu_cuda_cannot_use_says_so_in_one_line(
    tmp_path, monkeypatch, capsys, preloads
):
    cuda_build()
    monkeypatch.setattr(onnx_file, "has_nvidia_gpu", lambda: True)
    path = tiny_onnx(tmp_path / "m.onnx", card(precision="fp32"))
    session = onnx_file.open_session(path, "auto")
    assert preloads == [()]  # the libraries are loaded before the CUDA session
    if session.get_providers()[0] == "CUDAExecutionProvider":
        pytest.skip("CUDA works here")
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zoo: CUDA is not usable (") and line.endswith("; running on CPU")


def test_a_cpu_run_never_preloads_cuda(tmp_path, monkeypatch, preloads):
    monkeypatch.setattr(onnx_file, "has_nvidia_gpu", lambda: True)
    path = tiny_onnx(tmp_path / "m.onnx", card(precision="fp32"))
    model = zoo.load(path, provider="cpu")
    model.runner(np.zeros((1, 1, 1000, 3), np.float32))
    assert preloads == []


def test_describe_device_without_a_gpu(monkeypatch):
    monkeypatch.setattr(hardware, "has_nvidia_gpu", lambda: False)
    line = hardware.describe_device(["CPUExecutionProvider"])
    assert line.startswith("CPU (") and line.endswith(": no NVIDIA GPU")


def test_describe_device_names_the_gpu_driver_and_cuda(monkeypatch):
    monkeypatch.setattr(hardware, "nvidia_gpus", lambda: [hardware.Gpu("NVIDIA H200", "580.95")])
    monkeypatch.setattr(hardware, "cuda_runtime_version", lambda: "13.0")
    line = hardware.describe_device(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert line == "NVIDIA H200 (driver 580.95, CUDA 13.0)"


def test_describe_device_says_why_a_gpu_is_not_used(monkeypatch):
    monkeypatch.setattr(hardware, "has_nvidia_gpu", lambda: True)
    no_cuda = hardware.describe_device(["CPUExecutionProvider"], ["CPUExecutionProvider"])
    assert no_cuda.endswith("this ONNX Runtime has no CUDA provider (pip install 'zoo[gpu]')")
