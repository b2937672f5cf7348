"""The ``zoo`` command: output formats, exit codes, and staying light where it must."""

from __future__ import annotations

import json
import time

import pytest

from zoo.cli.main import main
from zoo.plugin.manager import DEFAULT_PLUGINS
from zoo.plugin.registry import get_registry

from .conftest import modules_imported, run_zoo

HEAVY = ("tensorflow", "keras", "onnxruntime", "tf2onnx", "onnx", "numpy", "PIL", "matplotlib")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [["--help"], ["list"], ["list", "--json"], ["plugins", "--all"], ["predict", "--help"]]
)
def test_light_commands_never_import_tensorflow_or_numpy(args):
    result, imported = modules_imported(*args, among=HEAVY)
    assert result.returncode == 0, result.stderr
    assert imported == []


def test_list_is_fast():
    started = time.monotonic()
    result = run_zoo("list")
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert elapsed < 1.5, f"zoo list took {elapsed:.2f}s, interpreter start included"


def test_list_shows_the_four_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("vgg16", "resnet50", "inception_v3", "mobilenet"):
        assert name in out
    assert "299x299" in out


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["inception_v3"]["input_size"] == [299, 299]
    assert rows["inception_v3"]["preprocess"] == "tf"
    assert rows["vgg16"]["preprocess"] == "caffe"
    assert rows["resnet50"]["aliases"] == ["resnet"]
    assert rows["mobilenet"]["plugin"] == "zoo.plugins.keras_applications"


def test_plugins_all_json(capsys):
    assert main(["plugins", "--all", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    applications = rows["zoo.plugins.keras_applications"]
    assert applications["hooks"] == ["register_models"]
    assert applications["models"] == ["vgg16", "resnet50", "inception_v3", "mobilenet"]
    assert rows["zoo.plugins.onnx_backend"]["backends"] == ["onnx"]
    assert rows["zoo.plugins.onnx_exporter"]["hooks"] == ["register_exporters"]
    assert rows["zoo.plugins.onnx_exporter"]["exporters"] == ["onnx"]
    assert rows["zoo.plugins.commands"]["hooks"] == ["register_commands"]
    assert rows["zoo.plugins.bundles"]["hooks"] == ["register_models"]
    builtins = [row for row in rows.values() if row["builtin"]]
    assert len(builtins) == len(DEFAULT_PLUGINS) and all(row["error"] is None for row in builtins)


def test_plugins_without_all_leaves_the_builtins_out(capsys):
    assert main(["plugins", "--json"]) == 0
    assert not any(row["builtin"] for row in json.loads(capsys.readouterr().out))


def test_unknown_model_is_one_line_with_a_suggestion(capsys, photo):
    assert main(["predict", "mobilenett", str(photo)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "zoo: unknown model 'mobilenett'; did you mean 'mobilenet'?\n"


def test_unknown_backend_lists_the_known_ones(capsys, photo):
    assert main(["predict", "mobilenet", str(photo), "--backend", "tpu"]) == 1
    known = ", ".join(sorted(get_registry().table("backend")))
    assert {"keras", "onnx"} <= set(known.split(", "))
    assert capsys.readouterr().err == f"zoo: unknown backend 'tpu'; available: {known}\n"


def test_bad_arguments_exit_2_with_usage(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["predict", "mobilenet", "x.jpg", "--top", "0"])
    assert caught.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--val-split", "1", "must be more than 0 and less than 1, not 1"),
        ("--val-split", "0", "must be more than 0 and less than 1, not 0"),
        ("--dropout", "1.5", "must be at least 0 and less than 1, not 1.5"),
        ("--learning-rate", "-1e-3", "must be more than 0, not -1e-3"),
        ("--learning-rate", "nan", "must be more than 0, not nan"),
        ("--finetune-learning-rate", "fast", "must be a number, not 'fast'"),
    ],
)
def test_out_of_range_numbers_exit_2_naming_the_range(capsys, option, value, message):
    with pytest.raises(SystemExit) as caught:
        main(["train", "mobilenet", "data", "-o", "x", f"{option}={value}"])
    assert caught.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_json_schema(capsys, photo):
    assert main(["predict", "resnet", str(photo), "--weights", "none", "--json", "--top", "3"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["image"] == str(photo)
    assert record["model"] == "resnet50"
    assert record["backend"] == "keras"
    assert [p["rank"] for p in record["top"]] == [1, 2, 3]
    for p in record["top"]:
        assert set(p) == {"rank", "index", "class_id", "label", "score"}
        assert 0 <= p["index"] < 1000 and p["class_id"].startswith("n")
        assert isinstance(p["score"], float) and 0 <= p["score"] <= 1
    scores = [p["score"] for p in record["top"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_predict_human_output_is_aligned(capsys, photo):
    assert main(["predict", "mobilenet", str(photo), str(photo), "--weights", "none"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12  # two images: a header and five predictions each
    assert lines[0] == f"{photo}  (mobilenet, keras)"
    rows = lines[1:6]
    assert all(row.startswith(f"  {rank}. ('n") for rank, row in enumerate(rows, start=1))
    assert len({row.rindex(" ") for row in rows}) == 1  # scores start in one column


@pytest.mark.slow
def test_debug_shows_the_traceback(photo):
    result = run_zoo("--debug", "predict", "nope", str(photo))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "UnknownModel" in result.stderr
