"""``zoo export --onnx``, the .onnx model card, the ONNX Runtime path and the verifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
import zoo.runtime.samples
from zoo.cli.main import main
from zoo.exporters.verify_report import VerifyReport
from zoo.model.card import METADATA_KEY, ModelCard
from zoo.model.labels import imagenet_labels
from zoo.plugin.registry import get_registry

from .conftest import CARD, modules_imported, run_zoo


def test_model_card_round_trips():
    assert ModelCard.from_json(CARD.to_json()) == CARD


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "malformed"),
        ('{"format_version": 99}', "format 99"),
        ('{"format_version": 1, "model": "x"}', "malformed"),
        ("[1, 2]", "malformed"),
    ],
)
def test_a_bad_model_card_is_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        ModelCard.from_json(text)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """MobileNet, random init, exported and verified once for this module."""
    from zoo.exporters.onnx import export_onnx
    from zoo.model.spec import ExportOptions

    path = tmp_path_factory.mktemp("export") / "mobilenet.onnx"
    result = export_onnx(get_registry().model("mobilenet"), path, ExportOptions(weights="none"))
    assert result.report.passed
    return path


@pytest.mark.slow
def test_the_export_is_named_dynamic_and_self_describing(exported):
    import onnx

    proto = onnx.load(str(exported), load_external_data=False)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [224, 224, 3]
    card = ModelCard.from_json({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert card.model == "mobilenet" and card.input.size == (224, 224)
    assert card.input.preprocess == get_registry().preprocessors["tf"]
    assert card.input.labels == imagenet_labels()
    assert card.weights == "none" and card.weights_sha256 is None
    assert oct(exported.stat().st_mode & 0o777) != oct(0o600)  # readable like any file


@pytest.mark.slow
def test_the_verification_report_sits_next_to_the_model(exported):
    report = json.loads(exported.with_suffix(".verify.json").read_text())
    assert report["format"] == 2 and VerifyReport.read(exported.with_suffix(".verify.json")).passed
    assert report["passed"] and report["batch_sizes"] == [1, 8]
    assert report["converter"] == {"name": "emitter", "unsupported_layers": []}
    assert report["images"] >= 5
    assert report["max_relative_diff"] <= report["tolerance"]
    assert all(check["top5_identical"] for check in report["checks"])


@pytest.mark.slow
def test_onnx_and_keras_give_the_same_top5(exported, photo):
    keras_top = zoo.load("mobilenet", weights="none").predict(photo)
    onnx_model = zoo.load(exported, provider="cpu")
    assert onnx_model.name == "mobilenet" and onnx_model.backend == "onnx"
    onnx_top = onnx_model.predict(photo)
    assert [p.index for p in onnx_top] == [p.index for p in keras_top]
    np.testing.assert_allclose([p.score for p in onnx_top], [p.score for p in keras_top], rtol=1e-5)


@pytest.mark.slow
def test_predicting_from_an_onnx_file_never_imports_tensorflow(exported, photo):
    result, imported = modules_imported(
        "predict", str(exported), str(photo), "--json", "--provider", "cpu",
        among=("tensorflow", "keras"), quiet=False,
    )  # fmt: skip
    assert result.returncode == 0 and imported == [], result.stderr
    [record] = json.loads(result.stdout)
    assert record["model"] == "mobilenet" and record["backend"] == "onnx"
    assert len(record["top"]) == 5


@pytest.mark.slow
def test_verify_fails_on_a_perturbed_model(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(exported))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(biggest).copy()
    values *= np.random.default_rng(0).normal(1.0, 0.05, values.shape).astype(values.dtype)
    biggest.CopyFrom(numpy_helper.from_array(values, biggest.name))
    perturbed = tmp_path / "perturbed.onnx"
    onnx.save(proto, str(perturbed))

    result = run_zoo("verify", "mobilenet", str(perturbed))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: mobilenet: ONNX Runtime disagrees with Keras on ")
    assert "Keras top-5 [" in line and "ONNX top-5 [" in line and "tolerance" in line
    assert json.loads((tmp_path / "perturbed.verify.json").read_text())["passed"] is False


@pytest.mark.slow
def test_export_without_verification(capsys, tmp_path):
    destination = tmp_path / "mobilenet.onnx"
    assert (
        main(["export", "mobilenet", "--weights", "none", "--no-verify", "-o", str(destination)])
        == 0
    )
    assert capsys.readouterr().out.strip().endswith(", not verified (--no-verify)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet.onnx"]
    assert zoo.load(destination, provider="cpu").predict(
        zoo.runtime.samples.sample_images()[0], top=1
    )


@pytest.mark.slow
def test_verify_passes_on_the_export(exported):
    result = run_zoo("verify", "mobilenet", str(exported), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True


@pytest.mark.slow
def test_a_truncated_onnx_is_one_line(tmp_path, photo):
    whole = _relu_model(tmp_path / "relu.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(whole[: len(whole) // 2])
    result = run_zoo("predict", str(truncated), str(photo), "--provider", "cpu")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: {truncated}: not a model ONNX Runtime can load (")


@pytest.mark.slow
def test_an_onnx_file_not_made_by_zoo_is_one_line(tmp_path, photo):
    plain = _relu_model(tmp_path / "plain.onnx")
    result = run_zoo("predict", str(plain), str(photo), "--provider", "cpu")
    assert result.returncode == 1
    assert result.stderr == (
        f"zoo: {plain}: has no zoo metadata, so zoo cannot know its preprocessing and labels; "
        "export the model with 'zoo export MODEL --onnx'\n"
    )


def test_a_missing_onnx_is_one_line(capsys, photo, tmp_path):
    assert main(["predict", str(tmp_path / "nope.onnx"), str(photo)]) == 1
    assert capsys.readouterr().err == f"zoo: {tmp_path / 'nope.onnx'}: no such file\n"


def _relu_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [value("x", TensorProto.FLOAT, [1, 224, 224, 3])],
        [value("y", TensorProto.FLOAT, [1, 224, 224, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_an_unwritable_destination_fails_before_any_work(tmp_path):
    started = time.monotonic()
    result = run_zoo("export", "vgg16", "-o", str(tmp_path / "missing" / "vgg16.onnx"))
    assert result.returncode == 1
    folder = tmp_path / "missing"
    assert result.stderr == f"zoo: {folder / 'vgg16.onnx'}: folder {folder} does not exist\n"
    assert time.monotonic() - started < 5  # TensorFlow was never imported


@pytest.mark.slow
def test_an_interrupted_export_leaves_nothing(tmp_path):
    destination = tmp_path / "resnet50.onnx"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoo",
            "export",
            "resnet50",
            "--weights",
            "none",
            "-o",
            str(destination),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".resnet50.onnx.*.tmp")):  # the conversion has begun
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert stderr.strip().endswith("zoo: terminated")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_the_onnx_backend_exports_once_into_the_cache(tmp_path, photo):
    def top(*options: str, env=None) -> list[dict]:
        result = run_zoo(
            "predict", "mobilenet", str(photo), "--weights", "none", "--json", *options, env=env
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]["top"]

    home = {"ZOO_HOME": str(tmp_path / "zoo-home")}
    first = top("--backend", "onnx", "--provider", "cpu", env=home)
    [cached] = (tmp_path / "zoo-home" / "exports").glob("mobilenet-random-init-zoo*.onnx")
    modified = cached.stat().st_mtime_ns
    assert top("--backend", "onnx", "--provider", "cpu", env=home) == first
    assert cached.stat().st_mtime_ns == modified  # used, not exported again
    assert [p["index"] for p in top()] == [p["index"] for p in first]  # the keras backend


@pytest.mark.slow
def test_provider_auto_falls_back_in_one_line(tmp_path, photo):
    """On a machine whose ONNX Runtime has CUDA but no usable GPU: one line, then the CPU."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime build has no CUDA provider")
    plain = _relu_model(tmp_path / "plain.onnx")
    result = run_zoo("predict", str(plain), str(photo))  # --provider auto
    lines = result.stderr.splitlines()
    assert all(line.startswith("zoo: ") for line in lines), result.stderr  # no ORT noise
    fallback = [line for line in lines if "CUDA is not usable" in line]
    assert len(fallback) <= 1
    if fallback:
        assert fallback[0].endswith("; running on CPU")


@pytest.mark.slow
def test_an_unknown_provider_is_one_line(tmp_path, photo):
    plain = _relu_model(tmp_path / "plain.onnx")
    result = run_zoo("predict", str(plain), str(photo), "--provider", "tpu")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: execution provider 'tpu' is not in this ONNX Runtime build")


@pytest.mark.slow
def test_a_fallback_to_tf2onnx_is_named_with_the_layers_that_forced_it(tmp_path):
    from zoo.exporters.onnx import export_onnx
    from zoo.plugin.manager import pm

    def build(weights):
        from zoo.sources.keras_model import import_keras

        keras = import_keras()

        class Doubler(keras.layers.Layer):  # a layer a plugin invents
            def call(self, x):
                return x * 2.0

        inputs = keras.Input((16, 16, 3))
        x = Doubler()(keras.layers.Conv2D(4, 3)(inputs))
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))

    class Plugin:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    "doubled", build, (16, 16), "tf", labels=["a", "b"], verification_images=()
                )
            )

    pm.register(Plugin(), name="zoo-doubled")
    try:
        spec = get_registry(refresh=True).model("doubled")
        result = export_onnx(spec, tmp_path / "d.onnx", zoo.ExportOptions(weights="none"))
    finally:
        pm.unregister(name="zoo-doubled")
        get_registry(refresh=True)
    assert "converted by tf2onnx: the emitter does not convert Doubler" in result.summary()
    assert result.to_dict()["converter"] == {"name": "tf2onnx", "unsupported_layers": ["Doubler"]}
    report = json.loads((tmp_path / "d.verify.json").read_text())
    assert report["converter"]["name"] == "tf2onnx" and report["passed"]
