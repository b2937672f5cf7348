"""What a careless user or an attacker gives the CLI and the Python API: named pipes, odd file
names, tampered caches and model cards, kill -9 mid-write, signals with a thread stuck.

The promise (docs/errors.md): one ``zoo: ...`` line and a non-zero exit, or a ``ZooError`` from
the API; never a traceback, a hang or a wrong answer. Every subprocess has a timeout.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.base.errors import ImageError, ZooError
from zoo.base.files import FolderKind, atomic_directory, atomic_path
from zoo.base.stdio import filtered_stderr
from zoo.model.input_config import InputConfig
from zoo.model.spec import LoadOptions, ModelSpec
from zoo.runtime.model import Model
from zoo.runtime.onnx_file import ModelFileError, load_onnx

from .conftest import run_zoo
from .tiny_onnx import LABELS, write_tiny_onnx

TIMEOUT_S = 60


def zoo_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``zoo ARGS``, its output as bytes: hostile names need not decode."""
    return run_zoo(*args, env=env, text=False, timeout=TIMEOUT_S)


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def red(tmp_path) -> Path:
    path = tmp_path / "red.png"
    Image.new("RGB", (8, 6), (250, 5, 5)).save(path)
    return path


# 6. A named pipe among the inputs; an interrupt with a thread stuck ------------------------


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_an_error_record_and_the_photo_beside_it_is_classified(tmp_path, tiny, red):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result = zoo_cli("predict", str(tiny), str(fifo), str(red), "--json", "--provider", "cpu")
    assert result.returncode == 1
    records = json.loads(result.stdout)
    assert records[0] == {"image": str(fifo), "error": "not a regular file (a named pipe)"}
    assert records[1]["top"][0]["label"] == "red"
    assert result.stderr.decode() == f"zoo: {fifo}: not a regular file (a named pipe)\n"


STUCK_THREAD = textwrap.dedent(
    """
    import sys, threading, time
    from types import SimpleNamespace
    from zoo.cli.main import _run

    def run(args):
        threading.Thread(target=time.sleep, args=(3600,)).start()  # a decoder stuck on a read
        print("ready", flush=True)
        time.sleep(3600)

    sys.exit(_run(SimpleNamespace(run=run), debug=False))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGTERM, 143, "zoo: terminated"), (signal.SIGINT, 130, "zoo: interrupted")],
)
def test_an_interrupt_ends_the_process_even_with_a_thread_stuck(sent, code, said):
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_THREAD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(sent)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == code
    assert stderr == f"{said}\n"


# 10. File names that break lines or are not UTF-8 ------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_odd_file_names_stay_one_line_in_text_and_valid_utf8_in_json(tmp_path, tiny, red):
    folder = tmp_path / "odd"
    folder.mkdir()
    names = [b"new\nline.png", b"bad\xffbyte.png", b"\x1b[31mred.png"]
    for name in names:
        (folder / os.fsdecode(name)).write_bytes(red.read_bytes())
    text = zoo_cli("predict", str(tiny), str(folder), "--top", "1", "--provider", "cpu")
    assert text.returncode == 0, text.stderr
    headers = [line for line in text.stdout.decode().splitlines() if not line.startswith(" ")]
    assert sorted(headers) == sorted(
        f"{folder}/{shown}  (tiny, onnx)"
        for shown in ("new\\nline.png", "bad\\xffbyte.png", "\\x1b[31mred.png")
    )
    listed = zoo_cli("predict", str(tiny), str(folder), "--json", "--provider", "cpu")
    records = json.loads(listed.stdout.decode("utf-8"))  # strict: no lone surrogates below
    for record in records:
        record["image"].encode("utf-8")
    by_bytes = {
        base64.b64decode(r["image_base64"]) if "image_base64" in r else r["image"].encode(): r
        for r in records
    }
    assert set(by_bytes) == {os.fsencode(folder) + b"/" + name for name in names}
    assert by_bytes[os.fsencode(folder) + b"/bad\xffbyte.png"]["image"].endswith(
        "bad\ufffdbyte.png"
    )


@pytest.mark.slow
def test_an_unreadable_odd_name_is_one_line_on_stderr(tmp_path, tiny):
    missing = tmp_path / "no\nsuch.png"
    result = zoo_cli("predict", str(tiny), str(missing), "--provider", "cpu")
    assert result.returncode == 1
    assert result.stderr.decode() == f"zoo: {tmp_path}/no\\nsuch.png: no such file\n"


# 2. A model card that does not match its graph ----------------------------------------------


CARD_EDITS = {
    "huge_input": (lambda card: card["input"].update(size=[8000, 8000]), "input (batch,"),
    "ten_labels": (
        lambda card: card.update(labels=[[f"c{i}", f"l{i}"] for i in range(10)]),
        "10 labels",
    ),
    "uint8_dtype": (lambda card: card["input"].update(dtype="uint8"), "input dtype"),
    "nchw_layout": (lambda card: card["input"].update(layout="NCHW"), "layout"),
    "no_such_output": (lambda card: card["outputs"].update(probabilities="nope"), "no output"),
}


@pytest.mark.parametrize("edit", CARD_EDITS, ids=list(CARD_EDITS))
def test_a_card_that_does_not_match_its_graph_is_refused_at_load(tmp_path, edit):
    change, said = CARD_EDITS[edit]
    path = write_tiny_onnx(tmp_path / "lying.onnx", change)
    with pytest.raises(ModelFileError, match="does not match its graph") as refused:
        zoo.load(path, provider="cpu")
    assert said in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_card_with_a_fractional_size_is_refused_as_malformed(tmp_path):
    path = write_tiny_onnx(tmp_path / "odd.onnx", lambda card: card["input"].update(size=[4.5, 4]))
    with pytest.raises(ModelFileError, match=r"malformed zoo metadata .*two positive integers"):
        zoo.load(path, provider="cpu")


@pytest.mark.slow
def test_predict_on_a_lying_card_is_one_line(tmp_path, red):
    path = write_tiny_onnx(tmp_path / "lying.onnx", CARD_EDITS["huge_input"][0])
    result = zoo_cli("predict", str(path), str(red), "--provider", "cpu")
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.startswith(f"zoo: {path}: its zoo model card does not match its graph")
    assert stderr.count("\n") == 1


# 4. The Python API refuses what the CLI refuses ---------------------------------------------


def toy_model() -> Model:
    def runner(batch):
        return np.full((len(batch), len(LABELS)), 1 / len(LABELS), np.float32)

    return Model(
        "toy", InputConfig((4, 4), zoo.PreprocessSpec("none"), LABELS), runner, "onnx", "none"
    )


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((5, 0, 3), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4), np.uint8),
        b"\x89PNG not really",
        Image.new("RGB", (0, 0)),
        42,
    ],
    ids=[
        "empty",
        "zero_width",
        "float32",
        "four_channels",
        "two_dims",
        "bytes",
        "empty_pil",
        "int",
    ],
)
def test_the_api_refuses_what_is_not_an_image_with_an_image_error(image):
    with pytest.raises(ImageError):
        toy_model().predict(image)


def test_the_api_refuses_an_empty_batch():
    with pytest.raises(ZooError, match="at least one image"):
        toy_model().predict_batch([])


def test_the_api_refuses_an_unknown_interpolation(red):
    with pytest.raises(ZooError, match="unknown interpolation"):
        toy_model().predict(red, interpolation="cubic")


# 1 and 11. The --backend onnx cache is checked, not trusted ---------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The onnx backend on a private ZOO_HOME, its exporter replaced by one that writes the
    tiny model and counts its calls."""
    from zoo.plugins import onnx_backend
    from zoo.sources import export_cache

    pytest.importorskip("zoo.exporters.onnx")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    exports = []

    def export(spec, path, options):
        exports.append(path)
        write_tiny_onnx(path)

    monkeypatch.setattr("zoo.exporters.onnx.export_onnx", export)
    spec = ModelSpec(name="tiny", build=print, input_size=(4, 4), preprocess="tf", labels=["a"])
    backend = onnx_backend.OnnxBackend()

    def load():
        return backend.load(spec, None, LoadOptions(provider="cpu"))

    path = export_cache.cached_export_path(spec, None)
    return load, exports, path


def test_the_export_cache_is_used_while_unchanged(cache):
    load, exports, path = cache
    load()
    load()
    assert exports == [path]
    assert path.with_name(path.name + ".sha256").is_file()


def test_a_tampered_cached_export_is_exported_again_with_one_line(cache, capfd):
    load, exports, path = cache
    load()
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # one byte of the card or the weights
    path.write_bytes(bytes(data))
    capfd.readouterr()
    runner = load()
    assert exports == [path, path]
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert "its sha256 differs from the one recorded" in err and "exporting it again" in err
    assert runner(np.ones((1, 4, 4, 3), np.float32)).shape == (1, 3)


def test_an_unloadable_cached_export_is_exported_again(cache, capfd):
    from zoo.sources.export_cache import record_digest

    load, exports, path = cache
    load()
    path.write_bytes(path.read_bytes()[:100])  # truncated, its hash recorded as if verified
    record_digest(path)
    capfd.readouterr()
    load()
    assert exports == [path, path]
    assert "ONNX Runtime cannot load it" in capfd.readouterr().err


def test_a_cached_export_without_a_recorded_hash_is_exported_again(cache):
    load, exports, path = cache
    path.parent.mkdir(parents=True)
    write_tiny_onnx(path)  # as zoo before this check wrote it, or someone else
    load()
    assert exports == [path]


# 5. kill -9 mid-write leaves nothing for good ----------------------------------------------


KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from zoo.base.files import FolderKind, atomic_directory, atomic_path, scratch_directory

    destination = Path(sys.argv[1])
    with atomic_path(destination) as temporary, scratch_directory(destination) as scratch:
        temporary.write_bytes(b"half")
        (scratch / "float32.onnx").write_bytes(b"half")
        with atomic_directory(destination.with_name("entry"), FolderKind("entry")) as staging:
            (staging / "model.onnx").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_what_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    destination = tmp_path / "model.onnx"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(destination)], timeout=TIMEOUT_S
    )
    assert killed.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 3 and all(name.startswith(".") for name in left), left
    with atomic_path(destination) as temporary:
        temporary.write_bytes(b"whole")
    with atomic_directory(tmp_path / "entry", FolderKind("entry")) as staging:
        (staging / "model.onnx").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry", "model.onnx"]


def test_a_live_writers_temporaries_are_kept(tmp_path):
    destination = tmp_path / "model.onnx"
    with atomic_path(destination) as first:
        first.write_bytes(b"one")
        with atomic_path(destination) as second:  # another write, same destination, same pid
            second.write_bytes(b"two")
            assert first.exists()
    assert destination.read_bytes() == b"one"


# 9, 11 and 12: clear one-line errors --------------------------------------------------------


def test_differing_labels_are_named_by_index_and_both_labels():
    from zoo.exporters.verify import label_difference

    theirs = [("n0", "tench"), ("n1", "goldfish"), ("n2", "shark")]
    ours = [("n0", "tench"), ("n1", "goldfish"), ("n2", "great_white_shark")]
    assert label_difference(theirs, ours) == (
        "the exported labels differ from the model's at index 2: 'shark' (n2) in the file, "
        "'great_white_shark' (n2) in the model"
    )
    assert label_difference(ours, ours) is None
    assert "2 labels, the model 3" in label_difference(ours[:2], ours)


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "-x", "", "mobile net"])
def test_model_names_that_could_escape_a_folder_or_url_are_refused(name):
    from zoo.serve.server import load_models

    with pytest.raises(ZooError, match="cannot serve a model named"):
        load_models([f"{name}=nothing.onnx"], "cpu", 0)  # refused before loading
    with pytest.raises(ValueError, match="model name"):
        ModelSpec(name=name, build=print, input_size=(4, 4), preprocess="tf")


@pytest.mark.slow
def test_serving_a_model_named_dot_dot_is_one_line(tiny):
    result = zoo_cli("serve", f"..={tiny}", "--port", "0", "--provider", "cpu")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("zoo: cannot serve a model named '..'")
    assert result.stderr.decode().count("\n") == 1


def test_a_multi_line_coloured_runtime_log_record_is_kept_off_the_terminal(capfd):
    from zoo.runtime.onnx_file import _ORT_LOG_LINE

    with filtered_stderr(_ORT_LOG_LINE) as dropped:
        os.write(
            2,
            b"\x1b[1;31m2026 [E:onnxruntime:, session.cc:1] Exception during initialization:\n"
            b"  a second line of the same record\n\x1b[m\nzoo's own line\n",
        )
    assert capfd.readouterr().err == "zoo's own line\n"
    assert len(dropped) == 3


@pytest.mark.slow
def test_a_file_onnx_runtime_cannot_load_is_one_line(tmp_path, tiny, red):
    data = tiny.read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data.replace(b"ReduceMean", b"ReduceMxan"))
    result = zoo_cli("predict", str(broken), str(red))
    assert result.returncode == 1
    lines = [
        line for line in result.stderr.decode().splitlines() if "CUDA is not usable" not in line
    ]
    assert len(lines) == 1 and lines[0].startswith(f"zoo: {broken}: not a model ONNX Runtime")


def test_load_onnx_of_the_tiny_model_works(tiny, red):
    model = load_onnx(tiny, provider="cpu")
    assert model.predict(red, top=1)[0].label == "red"


@pytest.mark.slow
@pytest.mark.real_weights
def test_a_shuffled_initializer_in_the_real_cache_is_caught(
    tmp_path, keras_home, mobilenet_weights, shared_images
):
    """The issue's reproduction: one initializer of the cached MobileNet export shuffled."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    cat = next(p for p in shared_images if p.name == "coral_cat_720p.jpg")
    (keras_home / "models").mkdir(exist_ok=True)
    env = {"ZOO_HOME": str(tmp_path / "home")}

    def predict():
        result = run_zoo(
            "predict",
            "mobilenet",
            str(cat),
            "--backend",
            "onnx",
            "--weights",
            str(mobilenet_weights),
            "--json",
            "--top",
            "1",
            "--provider",
            "cpu",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]["top"][0]["label"], result.stderr

    expected, _ = predict()
    [cached] = (tmp_path / "home" / "exports").glob("*.onnx")
    model = onnx.load(cached)
    biggest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(biggest).copy()
    np.random.default_rng(0).shuffle(values.reshape(-1))
    biggest.CopyFrom(numpy_helper.from_array(values, biggest.name))
    onnx.save(model, cached)
    label, stderr = predict()
    assert label == expected
    assert "exporting it again" in stderr


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # zoo evaluate ... | head -2: the rest of the output has nowhere to go.
    code = (
        "import argparse, sys; from zoo.cli.main import _run; "
        "chatty = argparse.Namespace(run=lambda args: [print('x' * 99) for _ in range(10**5)]); "
        "sys.exit(_run(chatty, debug=False))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.read(10)
    process.stdout.close()
    assert process.wait(timeout=60) == 128 + signal.SIGPIPE
    assert process.stderr.read() == b""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("saved/saved_model.pb", "a file of a TensorFlow SavedModel; give its folder (saved)"),
        ("saved", "a SavedModel's serving signature does not say how its pixels are made"),
    ],
)
def test_a_saved_model_refused_before_tensorflow_starts(
    zoo_here, tmp_path, monkeypatch, given, expected
):
    """Its saved_model.pb given for the folder, or a folder with no --preprocess (nothing in a
    SavedModel says how its pixels are made): one line, and TensorFlow never imported."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # importing it would now fail
    code, _, err = zoo_here("export", given, "-o", "out.onnx")
    assert code != 0 and expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "out.onnx").exists()
