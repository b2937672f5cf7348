"""``MODEL.verify.json``: one record for ``zoo export`` and ``zoo verify``, and the files of
earlier versions still read."""

from __future__ import annotations

import json

import pytest

from zoo.exporters.verify_report import FORMAT_VERSION, VerifyReport

HERE = {"cpu_class": "avx512-vnni", "onnxruntime": "1.23.2"}

EXPORT_BEFORE_FORMAT = {  # zoo export's file, float32 figures at the top level
    "model": "mobilenet",
    "onnx": "m.onnx",
    "passed": True,
    "tolerance": 1e-4,
    "max_relative_diff": 2e-6,
    "max_abs_diff_logits": 1e-5,
    "max_abs_diff_probabilities": 1e-7,
    "images": 6,
    "batch_sizes": [1, 4],
    "problems": [],
    "verified_on": HERE,
    "checks": [],
    "converter": {"name": "zoo-emitter", "unsupported_layers": []},
}
VERIFY_INT8_BEFORE_FORMAT = {  # zoo verify's own file for an int8 export
    "model": "mobilenet",
    "onnx": "m.int8.onnx",
    "agreement": {"precision": "int8", "passed": False, "top1_agreement": 0.5},
    "verified_on": HERE,
}


def test_zoo_exports_file_from_before_the_format_reads():
    report = VerifyReport.from_dict(EXPORT_BEFORE_FORMAT)
    assert report.format == 1 and report.passed
    assert report.float32["max_abs_diff_logits"] == 1e-5 and report.agreement is None
    assert report.converter["name"] == "zoo-emitter"
    rewritten = report.to_dict()
    assert {k: v for k, v in rewritten.items() if k != "format"} == EXPORT_BEFORE_FORMAT


def test_zoo_verifys_int8_file_from_before_the_format_reads():
    report = VerifyReport.from_dict(VERIFY_INT8_BEFORE_FORMAT)
    assert report.float32 is None and report.agreement["top1_agreement"] == 0.5
    assert report.verified_on == HERE and not report.passed


@pytest.mark.parametrize(
    ("float32", "agreement", "passed"),
    [(True, None, True), (True, True, True), (True, False, False), (None, True, True)],
)
def test_passed_needs_every_check_that_ran(float32, agreement, passed):
    report = VerifyReport(
        "m",
        "m.onnx",
        HERE,
        float32=None if float32 is None else {"passed": float32},
        agreement=None if agreement is None else {"passed": agreement},
    )
    assert report.passed is passed


def test_written_and_read_back_as_strict_json(tmp_path):
    path = tmp_path / "m.verify.json"
    VerifyReport.from_dict(EXPORT_BEFORE_FORMAT).write(path)
    document = json.loads(path.read_text())
    assert document["format"] == 1  # a file keeps the format it was read with
    fresh = VerifyReport("m", "m.onnx", HERE, float32={"passed": True})
    fresh.write(path)
    assert VerifyReport.read(path) == fresh and fresh.format == FORMAT_VERSION
    with pytest.raises(ValueError):
        VerifyReport("m", "m.onnx", HERE, float32={"max_relative_diff": float("nan")}).write(path)
    assert VerifyReport.read(path) == fresh  # a failed write leaves the last good file
