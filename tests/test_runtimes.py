"""Runtimes as backends: OpenVINO and OpenCV DNN run zoo's .onnx files as ONNX Runtime does,
each stating the precision it actually ran at (read back from the runtime); a precision the CPU
cannot compute natively, or a runtime that is not installed, is one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.base.hardware import cpu_flags, onnxruntime_version
from zoo.cli.main import main
from zoo.runtime import openvino_file
from zoo.runtime.onnx_metadata import NotOnnx, read_metadata

from .tiny_onnx import LABELS, write_tiny_onnx

PHOTO = Path(__file__).resolve().parent.parent / "core" / "data" / "samples" / "cat.jpg"
MATRIX = np.array([[3.0, -1.0, 0.5], [0.2, 2.0, -0.7], [-1.5, 0.4, 2.5]])
"""A tiny model whose three scores differ, so that a wrong feed changes the answer."""


def needs(module: str, extra: str):
    """Skip, in one line, where the runtime is not installed (``.ci/run`` installs both)."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"no {module}: pip install 'zoo[{extra}]'")


openvino_needed, opencv_needed = needs("openvino", "openvino"), needs("cv2", "opencv")


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_onnx(tmp_path / "tiny.onnx", matrix=MATRIX)


def pixels(count: int = 5) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (count, 4, 4, 3), dtype=np.uint8)


def test_the_card_is_read_from_the_file_without_a_runtime(tiny):
    assert json.loads(read_metadata(tiny)["zoo"])["model"] == "tiny"


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\xff" * 20)
    with pytest.raises(NotOnnx):
        read_metadata(path)


@pytest.mark.parametrize(
    "backend",
    [pytest.param("openvino", marks=openvino_needed), pytest.param("opencv", marks=opencv_needed)],
)
def test_a_file_gives_onnx_runtimes_answers_in_fp32(tiny, backend):
    reference = zoo.load(tiny, backend="onnx")
    model = zoo.load(tiny, backend=backend)
    assert (model.backend, model.precision, model.runner.precision) == (backend, "fp32", "fp32")
    assert model.labels == reference.labels
    np.testing.assert_allclose(
        model.probabilities(pixels()), reference.probabilities(pixels()), atol=1e-6
    )


@openvino_needed
def test_openvino_records_the_precision_the_compiled_model_reports(tiny):
    model = zoo.load(tiny, backend="openvino")
    hint = model.runner.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    assert hint == "f32" and model.precision == "fp32"  # not OpenVINO's silent default


@openvino_needed
def test_bf16_where_the_cpu_has_it_is_what_the_compiled_model_runs(tiny):
    import openvino

    if "bf16" not in openvino_file.native_precisions(openvino.Core()):
        pytest.skip("this CPU has no native bf16")
    model = zoo.load(tiny, backend="openvino", precision="bf16")
    hint = model.runner.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    assert (hint, model.precision) == ("bf16", "bf16")
    reference = zoo.load(tiny, backend="onnx").probabilities(pixels())
    assert np.array_equal(model.probabilities(pixels()).argmax(1), reference.argmax(1))


@openvino_needed
def test_bf16_on_a_cpu_without_it_is_one_line(tiny, monkeypatch, capsys):
    monkeypatch.setattr(openvino_file, "native_precisions", lambda core: frozenset({"fp32"}))
    args = ["predict", str(tiny), str(PHOTO), "--backend", "openvino", "--precision", "bf16"]
    assert main(args) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zoo: this CPU (") and "does not compute bf16 natively" in line


@openvino_needed
def test_a_runtime_that_reports_another_precision_than_asked_is_refused(tiny, monkeypatch):
    """OpenVINO falls back to f32 without a word where it cannot run bf16: zoo reads back."""
    import openvino

    real = openvino.Core

    class Core:  # OpenVINO's, except that its compiled models always say f32
        def __init__(self):
            self.core = real()

        def __getattr__(self, name):
            return getattr(self.core, name)

        def compile_model(self, graph, device, config):
            return self.core.compile_model(
                graph, device, {**config, "INFERENCE_PRECISION_HINT": "f32"}
            )

    monkeypatch.setattr(
        openvino_file, "native_precisions", lambda core: frozenset({"fp32", "bf16"})
    )
    monkeypatch.setattr("openvino.Core", Core)
    with pytest.raises(zoo.ZooError, match=r"compiled .* in f32, not the bf16 asked for"):
        openvino_file.load_openvino(tiny, "bf16")


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        pytest.param("opencv", "bf16", "OpenCV DNN computes in fp32", marks=opencv_needed),
        ("onnx", "bf16", "tiny on onnx computes in fp32, not the bf16 asked for"),
        pytest.param(
            "openvino",
            "int4",
            "OpenVINO computes in fp32, bf16, fp16, not 'int4'",
            marks=openvino_needed,
        ),
    ],
)
def test_a_precision_a_runtime_does_not_run_is_one_line(tiny, capsys, backend, precision, message):
    args = ["predict", str(tiny), str(PHOTO), "--backend", backend, "--precision", precision]
    assert main(args) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zoo: ") and message in line


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [("openvino", "openvino", "openvino"), ("opencv", "cv2", "opencv")],
)
def test_a_missing_runtime_is_one_line_naming_the_extra(
    tiny, monkeypatch, capsys, backend, module, extra
):
    monkeypatch.setitem(sys.modules, module, None)
    assert main(["predict", str(tiny), str(PHOTO), "--backend", backend]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zoo: ") and f"pip install 'zoo[{extra}]'" in line


@pytest.mark.parametrize(
    "backend",
    [pytest.param("openvino", marks=openvino_needed), pytest.param("opencv", marks=opencv_needed)],
)
def test_a_card_that_does_not_match_the_graph_is_one_line(tmp_path, backend):
    def four_labels(card):
        card["labels"] = [*card["labels"], ["c3", "grey"]]

    path = write_tiny_onnx(tmp_path / "m.onnx", four_labels)
    with pytest.raises(zoo.ZooError, match=r"does not match its graph: .*4 labels"):
        zoo.load(path, backend=backend)


@pytest.mark.parametrize(
    "backend",
    [pytest.param("openvino", marks=openvino_needed), pytest.param("opencv", marks=opencv_needed)],
)
def test_predict_on_a_runtime_gives_onnx_runtimes_top_classes(tiny, capsys, backend):
    assert main(["predict", str(tiny), str(PHOTO), "--json", "--backend", "onnx"]) == 0
    expected = json.loads(capsys.readouterr().out)[0]["top"]
    assert main(["predict", str(tiny), str(PHOTO), "--json", "--backend", backend]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["backend"] == backend
    assert [t["index"] for t in record["top"]] == [t["index"] for t in expected]
    assert len(record["top"]) == len(LABELS)


@pytest.mark.parametrize(
    "backend",
    [pytest.param("openvino", marks=openvino_needed), pytest.param("opencv", marks=opencv_needed)],
)
def test_a_registered_model_runs_its_cached_export(tiny, monkeypatch, backend):
    """``zoo.load(NAME, backend=...)`` goes through zoo's cache of verified exports, as onnx."""
    plugin = sys.modules[f"zoo.plugins.{backend}_backend"]
    exported = []
    monkeypatch.setattr(
        plugin, "cached_export", lambda spec, weights: exported.append(spec.name) or tiny
    )
    model = zoo.load("mobilenet", backend=backend, weights="none")
    assert exported == ["mobilenet"]
    assert (model.name, model.backend, model.precision) == ("mobilenet", backend, "fp32")


def onnx_runtime_reference(path: Path, count: int = 6):
    """What ``zoo verify`` compares with, made by ONNX Runtime instead of Keras (the tiny model
    has no Keras original): exact by construction on ONNX Runtime."""
    from zoo.exporters.keras_outputs import KerasReference
    from zoo.runtime.preprocessing import preprocess

    model = zoo.load(path, backend="onnx")
    photos = pixels(count)
    probabilities = model.runner(preprocess(photos, model.preprocessing)).astype(np.float64)
    names = [f"photo{i}.png" for i in range(count)]
    return KerasReference(names, photos, model.preprocessing, model.labels, probabilities, None)


@pytest.fixture
def verify_on(monkeypatch, tiny):
    """``verify_runtimes`` on the tiny file, against ONNX Runtime's outputs; each model it
    loads is kept in ``loaded``."""
    from types import SimpleNamespace

    from zoo.exporters import runtimes

    reference = onnx_runtime_reference(tiny)
    monkeypatch.setattr(runtimes, "keras_reference_for", lambda *args: reference)
    loaded = []

    def load(*args, **kwargs):
        loaded.append(zoo.load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(runtimes, "load", load)

    def verify_on(backends, precisions=(None,)):
        spec = SimpleNamespace(name="tiny")
        return runtimes.verify_runtimes(spec, tiny, backends, precisions), loaded

    return verify_on


@openvino_needed
@opencv_needed
def test_verify_on_every_runtime_is_one_table_of_exact_checks(verify_on):
    import cv2

    report, _ = verify_on(["onnx", "openvino", "opencv"])
    assert report.passed and report.skipped == []
    rows = report.rows()
    assert [row[:4] for row in rows] == [
        ["onnx", f"ONNX Runtime {onnxruntime_version()}", "fp32", "exact"],
        ["openvino", f"OpenVINO {openvino_file.openvino_version()}", "fp32", "exact"],
        ["opencv", f"OpenCV DNN {cv2.__version__}", "fp32", "exact"],
    ]
    assert [row[-1] for row in rows] == ["passes"] * 3


@openvino_needed
def test_the_report_records_the_precision_the_runtime_ran_at(verify_on):
    import openvino

    precisions = sorted(openvino_file.native_precisions(openvino.Core()) - {"fp16"})
    report, loaded = verify_on(["openvino"], precisions)
    for check, model in zip(report.checks, loaded, strict=True):
        hint = model.runner.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        assert openvino_file.PRECISIONS[check.precision] == hint
        assert report.to_dict()["runtimes"][loaded.index(model)]["precision"] == check.precision
        assert check.check == ("exact" if check.precision == "fp32" else "agreement")


@openvino_needed
def test_a_configuration_the_cpu_cannot_run_is_skipped_with_one_line(
    verify_on, monkeypatch, capsys
):
    monkeypatch.setattr(openvino_file, "native_precisions", lambda core: frozenset({"fp32"}))
    report, _ = verify_on(["openvino"], ["fp32", "bf16"])
    assert [check.precision for check in report.checks] == ["fp32"]
    [line] = capsys.readouterr().err.splitlines()
    assert (
        line.startswith("zoo: openvino at bf16 skipped: this CPU (") and line == report.skipped[0]
    )


@openvino_needed
def test_when_no_configuration_can_run_that_line_is_the_error(verify_on, monkeypatch):
    monkeypatch.setattr(openvino_file, "native_precisions", lambda core: frozenset({"fp32"}))
    with pytest.raises(zoo.ZooError, match="does not compute bf16 natively"):
        verify_on(["openvino"], ["bf16"])


@pytest.mark.tensorflow
@pytest.mark.real_weights
@openvino_needed
@opencv_needed
def test_zoo_verify_on_three_runtimes_with_real_weights(tmp_path, mobilenet_weights, capsys):
    from .conftest import run_zoo

    path = tmp_path / "mobilenet.onnx"
    exported = run_zoo("export", "mobilenet", "--weights", str(mobilenet_weights), "-o", str(path))
    assert exported.returncode == 0, exported.stderr
    args = ["verify", "mobilenet", str(path), "--weights", str(mobilenet_weights), "--json"]
    assert main([*args, "--backends", "onnx,openvino,opencv", "--precisions", "fp32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["backend"], r["precision"], r["check"]) for r in report["runtimes"]] == [
        ("onnx", "fp32", "exact"),
        ("openvino", "fp32", "exact"),
        ("opencv", "fp32", "exact"),
    ]
    assert report["passed"] and all(r["top1_agreement"] == 1.0 for r in report["runtimes"])


@pytest.mark.slow  # zoo bench times each configuration for a second at least
@openvino_needed
@opencv_needed
def test_bench_times_each_configuration_with_its_agreement(tiny, capsys):
    args = ["bench", str(tiny), "--backends", "onnx,openvino,opencv", "--precisions", "fp32,bf16"]
    assert main([*args, "--batch-sizes", "1,2", "--runs", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    import openvino

    ran = (
        ["fp32", "bf16"] if "bf16" in openvino_file.native_precisions(openvino.Core()) else ["fp32"]
    )
    configurations = [(c["backend"], c["precision"]) for c in report["configurations"]]
    assert configurations == [("onnx", "fp32"), *(("openvino", p) for p in ran), ("opencv", "fp32")]
    assert [line.split(" skipped: ")[0] for line in err.splitlines()] == [
        "zoo: onnx at bf16",
        *(["zoo: openvino at bf16"] if ran == ["fp32"] else []),
        "zoo: opencv at bf16",
    ]
    for configuration in report["configurations"]:
        assert configuration["agreement"]["photos"], configuration
        assert configuration["runtime"].split()[0] in ("ONNX", "OpenVINO", "OpenCV")
    assert sorted(report["fastest"]) == ["1", "2"]
    assert set(report["machine"]["cpu_flags"]) <= cpu_flags()
    assert [(r["backend"], r["precision"], r["batch"]) for r in report["results"]] == [
        (backend, precision, batch) for backend, precision in configurations for batch in (1, 2)
    ]


def test_the_fastest_configuration_is_one_whose_agreement_holds():
    from zoo.exporters.runtimes import fastest
    from zoo.runtime.bench import BenchResult

    def result(backend, precision, batch, per_s):
        return BenchResult("m", backend, precision, batch, 1.0, 1.0, per_s)

    results = [
        result("onnx", "fp32", 32, 40.0),
        result("openvino", "bf16", 32, 200.0),
        result("onnx", "int8", 32, 300.0),
        result("onnx", "fp32", 1, 30.0),
    ]
    agrees = {("onnx", "fp32"): True, ("openvino", "bf16"): True, ("onnx", "int8"): False}
    best = fastest(results, agrees)
    assert {batch: (r.backend, r.precision) for batch, r in best.items()} == {
        32: ("openvino", "bf16"),
        1: ("onnx", "fp32"),
    }


@pytest.mark.slow
def test_bench_of_a_file_with_the_default_backends_runs_it_on_onnx_runtime(tiny, capsys):
    assert main(["bench", str(tiny), "--batch-sizes", "1", "--runs", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["backend"] for r in report["results"]] == ["onnx"]
    assert "configurations" not in report  # without --precisions: as before


@pytest.fixture
def served(tiny):
    """``zoo serve``'s app in-process on the models ``load_models`` gives; yields the port."""
    pytest.importorskip("uvicorn")
    from zoo.serve.server import load_models

    from .app_server import serving

    def serve(backend, precision=None):
        return serving(load=lambda: load_models([str(tiny)], "cpu", 0, backend, precision))

    return serve


def get_json(port: int, path: str) -> dict:
    """The answer once the models are loaded (a 503 until then)."""
    import time

    from .app_server import request

    deadline = time.monotonic() + 30
    while (answer := request(port, "GET", path))[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, _, body = answer
    assert status == 200, body
    return json.loads(body)


@pytest.mark.slow
@openvino_needed
def test_serve_on_openvino_states_its_verification_in_v1_and_v2(served):
    import openvino

    precision = "bf16" if "bf16" in openvino_file.native_precisions(openvino.Core()) else "fp32"
    with served("openvino", precision) as port:
        v1 = get_json(port, "/v1/models/tiny")
        v2 = get_json(port, "/v2/models/tiny")
    assert (v1["backend"], v1["precision"]) == ("openvino", precision)
    verification = v1["verification"]
    assert verification["runtime"] == f"OpenVINO {openvino_file.openvino_version()}"
    assert verification["precision"] == precision and verification["passed"] is True
    assert verification["checked_against"].startswith("its fp32 export on ONNX Runtime ")
    assert verification["photos"] == 6 and verification["batch_sizes"] == [1, 8]
    parameters = v2["parameters"]
    assert parameters["precision"] == precision and parameters["passed"] is True
    assert json.loads(parameters["thresholds"]) == verification["thresholds"]
    assert all(isinstance(value, str | int | float | bool) for value in parameters.values())


def test_serve_on_onnx_runtime_serves_the_verified_file_itself(served):
    with served("onnx") as port:
        v1 = get_json(port, "/v1/models/tiny")
        v2 = get_json(port, "/v2/models/tiny")
    assert v1["verification"]["checked_against"] == "itself: the file is the verified export"
    assert v2["parameters"]["runtime"].startswith("ONNX Runtime ")


@openvino_needed
def test_a_configuration_whose_agreement_fails_is_not_served(tiny, monkeypatch):
    from zoo.exporters import runtimes
    from zoo.exporters.agreement import THRESHOLDS, AgreementReport
    from zoo.serve.server import load_models

    failing = AgreementReport("tiny", "fp32", THRESHOLDS["fp32"])  # no photo agrees
    monkeypatch.setattr(runtimes, "measured_agreement", lambda reference, model: failing)
    with pytest.raises(zoo.ZooError, match="on openvino at fp32 does not agree with its fp32"):
        load_models([str(tiny)], "cpu", 0, "openvino")


def nchw_tiny(tmp_path) -> Path:
    """The tiny model with an NCHW input (``zoo export --layout nchw``'s rewrite), its card
    saying so."""
    import onnx

    from zoo.exporters.layout import input_as_nchw

    def nchw(card):
        card["input"]["layout"] = "NCHW"

    path = write_tiny_onnx(tmp_path / "nchw.onnx", nchw, matrix=MATRIX)
    proto = onnx.load(path)
    input_as_nchw(proto, "image")
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return path


@pytest.mark.parametrize(
    "backend",
    [
        "onnx",
        pytest.param("openvino", marks=openvino_needed),
        pytest.param("opencv", marks=opencv_needed),
    ],
)
def test_an_nchw_file_is_fed_channels_first_and_answers_as_the_nhwc_one(tmp_path, tiny, backend):
    path = nchw_tiny(tmp_path)
    import onnx

    [graph_input] = onnx.load(path).graph.input
    dims = [d.dim_value or d.dim_param for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 4, 4]
    model = zoo.load(path, backend=backend)
    assert model.card.input_layout == "NCHW"
    expected = zoo.load(tiny, backend="onnx").probabilities(pixels())
    np.testing.assert_allclose(model.probabilities(pixels()), expected, atol=1e-6)


def test_an_nchw_card_on_an_nhwc_graph_is_refused(tmp_path):
    def nchw(card):
        card["input"]["layout"] = "NCHW"

    path = write_tiny_onnx(tmp_path / "m.onnx", nchw)
    with pytest.raises(zoo.ZooError, match=r"input layout NCHW \(batch, 3, 4, 4\), the graph's is"):
        zoo.load(path, backend="onnx")


@pytest.mark.tensorflow
@pytest.mark.real_weights
@openvino_needed
@opencv_needed
def test_an_nchw_export_is_verified_and_every_runtime_gives_the_nhwc_top5(
    tmp_path, mobilenet_weights, capsys
):
    from zoo.runtime.samples import sample_images

    from .conftest import run_zoo

    photos = [str(p) for p in sample_images()]
    files = {}
    for name, extra in {
        "nhwc": [],
        "nchw": ["--layout", "nchw"],
        "nchw-embedded": ["--layout", "nchw", "--embed-preprocessing"],
    }.items():
        files[name] = tmp_path / f"{name}.onnx"
        weights = ["--weights", str(mobilenet_weights)]
        done = run_zoo("export", "mobilenet", *weights, "-o", str(files[name]), *extra)
        assert done.returncode == 0, done.stderr  # verified against Keras, as every export
    answers = {}
    for (name, path), backend in [
        *((item, "onnx") for item in files.items()),
        (("nchw", files["nchw"]), "openvino"),
        (("nchw", files["nchw"]), "opencv"),
        (("nchw-embedded", files["nchw-embedded"]), "openvino"),
    ]:
        assert main(["predict", str(path), *photos, "--json", "--backend", backend]) == 0
        records = json.loads(capsys.readouterr().out)
        answers[(name, backend)] = [[t["index"] for t in r["top"]] for r in records]
    assert len({json.dumps(top5) for top5 in answers.values()}) == 1, answers


@pytest.mark.parametrize(
    "backend",
    [pytest.param("openvino", marks=openvino_needed), pytest.param("opencv", marks=opencv_needed)],
)
def test_evaluate_on_a_runtime_gives_onnx_runtimes_metrics(tmp_path, tiny, capsys, backend):
    from PIL import Image

    for name, colour in {"red": (250, 5, 5), "green": (5, 250, 5), "blue": (5, 5, 250)}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(2):
            shade = tuple(max(0, value - 40 * i) for value in colour)
            Image.new("RGB", (8, 8), shade).save(tmp_path / "data" / name / f"{i}.png")
    reports = {}
    for name in ("onnx", backend):
        assert (
            main(["evaluate", str(tiny), str(tmp_path / "data"), "--backend", name, "--json"]) == 0
        )
        reports[name] = json.loads(capsys.readouterr().out)
    assert (reports[backend]["backend"], reports[backend]["precision"]) == (backend, "fp32")
    for key in ("images", "top1", "confusion_matrix", "per_class"):
        assert reports[backend][key] == reports["onnx"][key]


@pytest.mark.slow  # two servers
@pytest.mark.parametrize("backend", ["onnx", pytest.param("openvino", marks=openvino_needed)])
def test_serve_on_an_nchw_file_answers_as_on_the_nhwc_one(tmp_path, tiny, backend):
    """The server's clients send images (and /v2 NHWC pixels) whatever the file's layout."""
    pytest.importorskip("uvicorn")
    import time

    from zoo.serve.server import load_models

    from .app_server import png, request, serving

    def answer(path: Path) -> list:
        with serving(load=lambda: load_models([str(path)], "cpu", 0, backend)) as port:
            deadline = time.monotonic() + 30
            while True:
                status, _, body = request(
                    port, "POST", "/v1/models/tiny:predict", png(), {"Content-Type": "image/png"}
                )
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert status == 200, body
        return json.loads(body)

    [nchw], [nhwc] = answer(nchw_tiny(tmp_path)), answer(tiny)
    assert [t["index"] for t in nchw["top"]] == [t["index"] for t in nhwc["top"]]
    scores = [[t["score"] for t in record["top"]] for record in (nchw, nhwc)]
    np.testing.assert_allclose(*scores, rtol=1e-5)  # the mean summed in another order
