"""Hostile Keras files (issue 36): each made here, small on disk, refused in one line before
Keras sees it, from the CLI and from ``zoo.load`` alike."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import pytest
from PIL import Image

import zoo
from zoo.base.errors import ZooError
from zoo.cli.main import main

from .hostile_keras import (
    ODD_CONFIGS,
    declared_3_5_gib,
    keras_object,
    model_config,
    weights_h5,
    write_keras,
)


def _photo(folder: Path) -> Path:
    Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / "red.png")
    return folder / "red.png"


def refused(args: list[str], capsys) -> str:
    """The one line zoo refused ``args`` with (exit 1, no traceback)."""
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("zoo: "), err
    return lines[-1]


def test_a_file_declaring_3_5_gib_is_refused_fast_and_small(tmp_path):
    model = declared_3_5_gib(tmp_path)
    assert model.stat().st_size < 16_000
    measure = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "print(r.stderr, file=sys.stderr)"
    )
    command = [sys.executable, "-m", "zoo", "predict", str(model), str(_photo(tmp_path))]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", measure, *command], capture_output=True, text=True, timeout=60
    )
    seconds = time.monotonic() - started
    status, rss_kib = map(int, result.stdout.split())
    assert status == 1, result.stderr
    assert "weights" in result.stderr and "3.5 GiB" in result.stderr, result.stderr
    assert "unexpected error" not in result.stderr
    assert seconds < 5, seconds
    assert rss_kib < 2**20, f"peak RSS {rss_kib} KiB"


def test_weights_declared_but_not_stored_are_refused_under_any_budget(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ZOO_MAX_KERAS_WEIGHTS_MB", "100000")
    model = write_keras(
        tmp_path / "m.keras", model_config(), weights_h5((2048, 2048), stored=False)
    )
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "declares weights it does not store" in line


def test_the_weights_budget_is_raised_by_its_variable(tmp_path, capsys, monkeypatch):
    model = write_keras(tmp_path / "m.keras", model_config(), weights_h5((1024, 512)))  # 2 MiB
    monkeypatch.setenv("ZOO_MAX_KERAS_WEIGHTS_MB", "1")
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "weights declared as 2.0 MiB" in line and "ZOO_MAX_KERAS_WEIGHTS_MB" in line


def test_a_config_over_its_bound_is_not_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZOO_MAX_KERAS_CONFIG_MB", "1")
    model = write_keras(tmp_path / "m.keras", " " * (2 * 2**20) + "{}")
    assert model.stat().st_size < 16_000
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "2,097,154 bytes" in line and "ZOO_MAX_KERAS_CONFIG_MB" in line


def test_an_archive_of_too_many_members_or_too_large_expanded(tmp_path, capsys, monkeypatch):
    photo = str(_photo(tmp_path))
    monkeypatch.setenv("ZOO_MAX_KERAS_MEMBERS", "10")
    many = write_keras(
        tmp_path / "many.keras", model_config(), extra=[(f"a/{i}", b"") for i in range(20)]
    )
    assert "23 files, over the bound of 10" in refused(["predict", str(many), photo], capsys)
    monkeypatch.delenv("ZOO_MAX_KERAS_MEMBERS")
    monkeypatch.setenv("ZOO_MAX_KERAS_WEIGHTS_MB", "1")
    monkeypatch.setenv("ZOO_MAX_KERAS_CONFIG_MB", "1")
    bomb = write_keras(
        tmp_path / "bomb.keras", model_config(), extra=[("assets/x", bytes(3 * 2**20))]
    )
    assert "expands to 3.0 MiB" in refused(["predict", str(bomb), photo], capsys)


@pytest.mark.parametrize("name", ODD_CONFIGS)
def test_odd_configs_are_one_line_from_the_cli_and_zoo_load(name, tmp_path, capsys):
    model = write_keras(tmp_path / f"{name}.keras", ODD_CONFIGS[name])
    refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    with pytest.raises(ZooError):
        zoo.load(model)


def test_an_h5_whose_model_config_is_not_text(tmp_path, capsys):
    model = tmp_path / "odd.h5"
    with h5py.File(model, "w") as file:
        file.attrs["model_config"] = 5
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "model_config attribute" in line
    with pytest.raises(ZooError):
        zoo.load(model)


def test_a_lambda_spelled_as_keras_layers_lambda_is_caught_by_zoo(tmp_path, capsys):
    lam = keras_object("layers.Lambda", {"name": "sneaky", "function": {}}, module="keras")
    model = write_keras(tmp_path / "m.keras", model_config(lam))
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "Lambda layer 'sneaky'" in line


def test_zoo_load_raises_only_zoo_errors_when_reading_a_users_file(monkeypatch, tmp_path):
    import zoo.runtime.api as api

    def crash(reference, options):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(api, "register_reference", crash)
    with pytest.raises(ZooError, match="cannot read it"):
        zoo.load(tmp_path / "m.keras")


RACE = """
import os, pathlib, random, sys, threading, time
from zoo.cli.main import main

source, work = map(pathlib.Path, sys.argv[1:3])
random.seed(36)
for trial in range(20):
    model = work / f"m{trial}.keras"
    model.write_bytes(source.read_bytes())
    delay = random.uniform(0, 0.4)

    def swap():
        time.sleep(delay)
        link = work / f"link{trial}"
        link.symlink_to("/dev/zero")
        os.replace(link, model)  # the name now a link to /dev/zero

    swapper = threading.Thread(target=swap)
    swapper.start()
    status = main(["import", str(model), "--name", f"m{trial}"])
    swapper.join()
    print("trial", trial, status, flush=True)
"""


@pytest.mark.tensorflow
@pytest.mark.slow
def test_a_file_swapped_for_dev_zero_during_import_ends_in_one_line_or_success(tmp_path):
    from .keras_files import make

    source = make("augmented", tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(  # a hang (reading /dev/zero) fails by the timeout
        [sys.executable, "-c", RACE, str(source), str(work)],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "ZOO_HOME": str(tmp_path / "home"), "ZOO_BUNDLES": ""},
    )
    trials = [line.split() for line in result.stdout.splitlines() if line.startswith("trial ")]
    statuses = [int(trial[2]) for trial in trials]
    assert len(statuses) == 20, result.stderr[-3000:]
    assert set(statuses) <= {0, 1}, statuses
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("zoo: /")]
    assert len(refusals) == statuses.count(1), result.stderr[-3000:]
    for kept in (tmp_path / "home").rglob("model.keras"):
        assert kept.stat().st_size == source.stat().st_size


def _any_size_model(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(36)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(path)
    return path


@pytest.mark.parametrize("size", ["0x0", "-3x5", "9000x9000"])
def test_a_bad_input_size_is_refused_before_the_model_loads(size, tmp_path, capsys):
    model = write_keras(tmp_path / "m.keras", "not even JSON")  # never read
    line = refused(["predict", str(model), str(_photo(tmp_path)), f"--input-size={size}"], capsys)
    assert line.startswith("zoo: --input-size "), line


@pytest.mark.tensorflow
@pytest.mark.slow
def test_an_input_size_too_small_for_the_model_is_one_line(tmp_path, capsys):
    model = str(_any_size_model(tmp_path / "any.keras"))
    photo = str(_photo(tmp_path))
    line = refused(["predict", model, photo, "--input-size", "1x1"], capsys)
    assert "cannot take images that small" in line, line
    assert main(["predict", model, photo, "--input-size", "16x16", "--json"]) == 0


def test_a_keras_link_to_a_zip_hdf5_polyglot_is_scanned_as_keras_opens_it(tmp_path, capsys):
    """HDF5 first, a clean .keras zip appended (both readers accept it): zoo reads its first
    bytes, scans the HDF5's config (a Lambda) and would give Keras that, named .h5."""
    h5 = tmp_path / "inner.h5"
    with h5py.File(h5, "w") as file:
        lam = keras_object("Lambda", {"name": "hidden", "function": {}})
        file.attrs["model_config"] = json.dumps(model_config(lam))
    clean = write_keras(tmp_path / "clean.keras", model_config())
    polyglot = tmp_path / "poly.bin"
    polyglot.write_bytes(h5.read_bytes() + clean.read_bytes())
    assert zipfile.is_zipfile(polyglot) and h5py.is_hdf5(polyglot)
    link = tmp_path / "model.keras"
    link.symlink_to(polyglot)
    line = refused(["predict", str(link), str(_photo(tmp_path))], capsys)
    assert "Lambda layer 'hidden'" in line, line


def _without_a_bias(tmp: Path) -> Path:
    """A .keras saved by Keras, its Dense layer's bias then taken out of its weights."""
    import keras

    keras.utils.set_random_seed(36)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    saved = tmp / "saved.keras"
    keras.Model(inputs, outputs).save(saved)
    broken = tmp / "broken.keras"
    with zipfile.ZipFile(saved) as old, zipfile.ZipFile(broken, "w") as new:
        for member in old.infolist():
            data = old.read(member)
            if member.filename == "model.weights.h5":
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "r+") as weights:
                    names: list[str] = []
                    weights.visit(names.append)
                    for name in (n for n in names if n.endswith("/1")):  # the bias
                        del weights[name]
                data = buffer.getvalue()
            new.writestr(member, data)
    return broken


@pytest.mark.tensorflow
@pytest.mark.slow
def test_weights_that_do_not_load_keep_keras_reason_and_no_raw_warning(tmp_path, capsys):
    model = _without_a_bias(tmp_path)
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "weights do not load" in line and "head" in line, line


def test_an_h5_model_config_over_its_bound_is_not_read(tmp_path, capsys, monkeypatch):
    model = tmp_path / "big.h5"
    with h5py.File(model, "w") as file:
        file.attrs["model_config"] = json.dumps(model_config()) + " " * (2 * 2**20)
    monkeypatch.setenv("ZOO_MAX_KERAS_CONFIG_MB", "1")
    line = refused(["predict", str(model), str(_photo(tmp_path))], capsys)
    assert "a config of 2,097,5" in line and "ZOO_MAX_KERAS_CONFIG_MB" in line, line
