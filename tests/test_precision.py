"""Lower-precision exports: int8 (static QDQ, calibrated) and fp16, with their agreement with
float32 Keras measured against reported thresholds."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.base import hardware
from zoo.exporters.agreement import THRESHOLDS, AgreementReport, PhotoAgreement
from zoo.exporters.errors import VerificationError
from zoo.model.card import ModelCard
from zoo.model.input_config import InputConfig
from zoo.model.labels import imagenet_labels

from .conftest import run_zoo

pytestmark = pytest.mark.slow


def op_types(path) -> Counter:
    import onnx

    return Counter(node.op_type for node in onnx.load(path).graph.node)


@pytest.fixture(scope="module")
def int8_random(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    path = folder / "mobilenet.int8.onnx"
    result = run_zoo(
        "export", "mobilenet", "--precision", "int8", "--weights", "none", "-o", str(path)
    )
    assert result.returncode == 0, result.stderr
    return path, result.stdout


def test_int8_export_is_a_qdq_graph_with_a_float_softmax(int8_random):
    path, _ = int8_random
    ops = op_types(path)
    assert ops["QuantizeLinear"] > 20 and ops["DequantizeLinear"] > 20
    assert ops["Softmax"] == 1
    assert path.stat().st_size < 6e6  # int8 weights: about a quarter of float32's 16.9 MB


def test_int8_card_says_int8_and_the_input_stays_float(int8_random):
    path, _ = int8_random
    model = zoo.load(path, provider="cpu")
    assert model.precision == "int8"
    assert model.runner.card.input_dtype == "float32"
    assert model.runner.session.get_inputs()[0].type == "tensor(float)"


def test_int8_report_holds_the_float_check_and_the_agreement(int8_random):
    path, stdout = int8_random
    assert "float32 graph verified against Keras" in stdout
    assert "int8 approximates the float32 model" in stdout
    report = json.loads(path.with_suffix(".verify.json").read_text())
    assert report["passed"]
    agreement = report["agreement"]
    assert agreement["precision"] == "int8"
    assert agreement["thresholds"] == {
        "top1_agreement": 0.95,
        "top5_overlap": 0.85,
        "max_probability_diff": 0.3,
    }
    # Where it was verified, in the report and in the file's card.
    assert report["verified_on"] == {
        "cpu_class": hardware.cpu_class(),
        "onnxruntime": hardware.onnxruntime_version(),
    }
    assert zoo.load(path, provider="cpu").runner.card.verified_on.to_dict() == report["verified_on"]
    # Calibrated on the sample photos by default, which the report says are also checked.
    assert len(agreement["calibration_images"]) == 6
    assert agreement["calibrated_on_verification_photos"] == agreement["calibration_images"]
    assert len(agreement["photos"]) == 12  # 6 photos at batch 1 and at batch 8


def test_unknown_precision_is_one_line(tmp_path):
    result = run_zoo("export", "mobilenet", "--precision", "int4", "-o", str(tmp_path / "m.onnx"))
    assert result.returncode == 1
    assert result.stderr == (
        "zoo: unknown precision 'int4'; choose from fp32, fp16, int8, int8-vnni\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_card_without_precision_reads_as_fp32():
    config = InputConfig((224, 224), zoo.model.spec.PreprocessSpec("tf"), imagenet_labels())
    card = ModelCard("m", config, "none", None, "0", 17)
    document = json.loads(card.to_json())
    del document["precision"]
    assert ModelCard.from_json(json.dumps(document)).precision == "fp32"


def test_a_card_records_the_resize_filter_and_an_older_one_reads_as_nearest():
    config = InputConfig(
        (224, 224), zoo.model.spec.PreprocessSpec("tf"), imagenet_labels(), interpolation="bilinear"
    )
    card = ModelCard("m", config, "none", None, "0", 17)
    assert ModelCard.from_json(card.to_json()).input.interpolation == "bilinear"
    document = json.loads(card.to_json())
    del document["input"]["interpolation"]
    assert ModelCard.from_json(json.dumps(document)).input.interpolation == "nearest"
    document["input"]["interpolation"] = "sinc"
    with pytest.raises(ValueError, match="unknown interpolation 'sinc'"):
        ModelCard.from_json(json.dumps(document))


def test_agreement_below_a_threshold_fails_naming_it():
    labels = imagenet_labels()
    report = AgreementReport("m", "int8", THRESHOLDS["int8"])
    report.photos = [
        PhotoAgreement("a.jpg", 1, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], 0.01),
        PhotoAgreement("b.jpg", 1, [1, 2, 3, 4, 5], [9, 8, 7, 6, 5], 0.4),
    ]
    assert report.top1_agreement == 0.5
    assert report.top5_overlap == pytest.approx(0.6)
    with pytest.raises(VerificationError) as caught:
        report.raise_for_failure(labels)
    message = str(caught.value)
    assert "top-1 agrees on 50% of photos, below the 95% required" in message
    assert "b.jpg" in message and "\n" not in message


def test_a_model_of_three_classes_can_agree_fully():
    # top-5 of a 3-class model is its 3 classes: the same three are full agreement, not 3/5.
    report = AgreementReport("colours", "int8", THRESHOLDS["int8"])
    report.photos = [PhotoAgreement("a.jpg", 1, [2, 0, 1], [2, 1, 0], 0.01)]
    assert report.top5_overlap == 1.0 and report.passed


# Real weights ------------------------------------------------------------------------------

# Calibrated on three of the shared photos, checked on all nine: the other six never took part
# in the calibration (zoo's own sample photos are downscaled copies of them, so they are not
# used here).
CALIBRATION = (
    "tflite_support_burger.jpg",
    "tflite_support_cats_and_dogs.jpg",
    "coral_missvickie_potato_chips.bmp",
)


@pytest.mark.real_weights
def test_int8_mobilenet_agrees_with_keras_on_the_shared_photos(
    tmp_path, mobilenet_weights, shared_images
):
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for image in shared_images:
        if image.name in CALIBRATION:
            shutil.copy(image, calibration)
    path = tmp_path / "mobilenet.int8.onnx"
    result = run_zoo(
        "export", "mobilenet", "--precision", "int8", "--weights",
        str(mobilenet_weights), "--calibration", str(calibration),
        "--images", str(shared_images[0].parent), "-o", str(path), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["precision"] == "int8" and summary["agreement"]["passed"]
    photos = json.loads(path.with_suffix(".verify.json").read_text())["agreement"]["photos"]
    shared = [p for p in photos if p["image"] in {i.name for i in shared_images}]
    unseen = [p for p in shared if p["image"] not in CALIBRATION]
    assert len(shared) == 18 and len(unseen) == 12  # 9 photos at two batch sizes
    assert sum(p["top1_agrees"] for p in shared) >= 16  # the 8 of 9, at each size
    assert sum(p["top1_agrees"] for p in unseen) >= 10

    keras = zoo.load("mobilenet", weights=mobilenet_weights)
    int8 = zoo.load(path, provider="cpu")
    agree = sum(
        keras.predict(image, top=1)[0].index == int8.predict(image, top=1)[0].index
        for image in shared_images
    )
    assert agree >= 8


@pytest.mark.real_weights
def test_fp16_mobilenet_keeps_float_io_and_passes_its_tighter_thresholds(
    tmp_path, mobilenet_weights, shared_images
):
    path = tmp_path / "mobilenet.fp16.onnx"
    result = run_zoo(
        "export", "mobilenet", "--precision", "fp16", "--weights",
        str(mobilenet_weights), "-o", str(path), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    agreement = json.loads(result.stdout)["agreement"]
    assert agreement["passed"] and agreement["thresholds"]["max_probability_diff"] == 0.01
    assert agreement["max_probability_diff"] < 0.01
    model = zoo.load(path, provider="cpu")
    assert model.precision == "fp16"
    assert [i.type for i in model.runner.session.get_inputs()] == ["tensor(float)"]
    import onnx

    initializers = onnx.load(path).graph.initializer
    fp16 = sum(
        int(np.prod(t.dims)) for t in initializers if t.data_type == onnx.TensorProto.FLOAT16
    )
    assert fp16 > 4_000_000  # MobileNet's 4.2M weights are stored in float16


def test_fp16_of_random_weights_fails_saying_why_and_writes_no_model(tmp_path):
    # MobileNet's random-init logits (about 1e-19) are below float16's smallest normal number.
    path = tmp_path / "mobilenet.fp16.onnx"
    result = run_zoo(
        "export", "mobilenet", "--precision", "fp16", "--weights", "none", "-o", str(path)
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "the fp16 model does not agree with Keras enough" in line
    assert line.endswith("export trained weights, or pass --no-verify")
    assert not path.exists()
    assert path.with_suffix(".verify.json").exists()  # the evidence stays


def test_an_int8_triton_entry_keeps_the_agreement_in_its_report(tmp_path):
    result = run_zoo(
        "export", "mobilenet", "--precision", "int8", "--weights", "none",
        "--triton", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    version = tmp_path / "mobilenet" / "1"
    report = json.loads((version / "model.verify.json").read_text())
    assert report["onnx"] == str(version / "model.onnx")
    assert report["agreement"]["precision"] == "int8" and report["agreement"]["passed"]
    assert zoo.load(version / "model.onnx", provider="cpu").precision == "int8"


def test_zoo_verify_measures_an_int8_file_by_its_agreement(int8_random, tmp_path):
    path = Path(shutil.copy(int8_random[0], tmp_path))  # its report is rewritten
    result = run_zoo("verify", "mobilenet", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: int8 against float32 Keras on 6 photos: passes")
    report = json.loads(path.with_suffix(".verify.json").read_text())
    assert report["onnx"] == str(path) and report["agreement"]["precision"] == "int8"


def test_zoo_verify_on_another_cpu_class_measures_again_and_says_so(
    int8_random, tmp_path, monkeypatch, capsys
):
    from zoo.base import hardware
    from zoo.cli.main import main
    from zoo.runtime import cpu_check

    path = Path(shutil.copy(int8_random[0], tmp_path))
    exported_on = zoo.load(path, provider="cpu").runner.card.verified_on
    assert exported_on.cpu_class == hardware.cpu_class()
    elsewhere = "avx2" if exported_on.cpu_class != "avx2" else "avx512_vnni"
    monkeypatch.setattr(hardware, "cpu_class", lambda *args: elsewhere)
    monkeypatch.setattr(cpu_check, "_warned", set())
    assert main(["verify", "mobilenet", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{path}: int8 against float32 Keras on 6 photos: passes")
    assert captured.err.splitlines() == [
        f"zoo: measured again on this {elsewhere} CPU (exported and verified on "
        f"{exported_on.cpu_class}): still passes here"
    ]  # and no warning to run zoo verify: this is it
    report = json.loads(path.with_suffix(".verify.json").read_text())
    assert report["verified_on"]["cpu_class"] == elsewhere
