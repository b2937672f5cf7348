"""Shared fixtures. The real data lives in ../shared/data beside the repository; tests that need
it skip cleanly when it is absent."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.model.card import ModelCard
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.plugin.manager import pm
from zoo.plugin.registry import get_registry
from zoo.training import train
from zoo.training.settings import TrainSettings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
MOBILENET_WEIGHTS = SHARED_DATA / "weights" / "mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5"

# Keras reads KERAS_HOME once, when it is imported: point it (and zoo) at a private cache that
# holds only the class index, so that keras's decode_predictions works offline and no test
# reads or writes the user's ~/.keras.
_KERAS_HOME = Path(tempfile.mkdtemp(prefix="zoo-tests-keras-home-"))
(_KERAS_HOME / "models").mkdir()
shutil.copy(
    resources.files("zoo").joinpath("data/imagenet_class_index.json"),
    _KERAS_HOME / "models" / "imagenet_class_index.json",
)
os.environ["KERAS_HOME"] = str(_KERAS_HOME)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_KERAS_HOME, ignore_errors=True)


@pytest.fixture
def keras_home() -> Path:
    """The tests' Keras cache (``$KERAS_HOME``); weights files copied here are found by zoo."""
    return _KERAS_HOME


@pytest.fixture(scope="session")
def shared_images() -> list[Path]:
    folder = SHARED_DATA / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return sorted(folder.iterdir())


@pytest.fixture(scope="session")
def mobilenet_weights() -> Path:
    if not MOBILENET_WEIGHTS.is_file():
        pytest.skip(f"{MOBILENET_WEIGHTS} is absent")
    return MOBILENET_WEIGHTS


@pytest.fixture(scope="session")
def expected_top5() -> dict:
    path = SHARED_DATA / "expected_top5.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def mobilenet_onnx(tmp_path_factory) -> Path:
    """MobileNet with seeded random-init weights, exported once per session, unverified."""
    path = tmp_path_factory.mktemp("mobilenet-onnx") / "mobilenet.onnx"
    result = run_zoo("export", "mobilenet", "--weights", "none", "-o", str(path), "--no-verify")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    """A photo-like JPEG (smooth colours plus noise), not square, so that it gets resized."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:300, 0:400]
    base = np.stack([x * 255 / 400, y * 255 / 300, (x + y) * 255 / 700], axis=-1)
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    return path


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """A zoo home of the test's own (no bundles elsewhere), the registry read afresh before and
    after, so that what one test registers no other sees."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_BUNDLES", raising=False)
    get_registry(refresh=True)
    yield tmp_path / "home"
    get_registry(refresh=True)


@pytest.fixture
def zoo_here(fresh_home, capsys):
    """``zoo ARGS`` run in this process, in a fresh home: (exit status, stdout, stderr). For
    tests where the process boundary is not the point: no interpreter to start, TensorFlow
    imported once for all of them."""
    from zoo.cli.main import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def input_config(size: tuple[int, int], interpolation: str = "nearest") -> InputConfig:
    """What a model of ``size`` takes, for the image functions (no preprocessing, one label)."""
    return InputConfig(size, PreprocessSpec("none"), (("0", "any"),), interpolation)


def run_zoo(
    *args: str,
    env: dict | None = None,
    python: str = sys.executable,
    cwd: Path | None = None,
    text: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run the ``zoo`` CLI in a fresh interpreter; returns the CompletedProcess (its output
    as bytes with ``text=False``)."""
    return subprocess.run(
        [python, "-m", "zoo", *args],
        capture_output=True,
        text=text,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def fresh_venv_seeing_this_one(venv: Path) -> str:
    """A new virtual environment that sees this one's packages (zoo, TensorFlow) through a
    .pth file rather than reinstalling them; its python."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "zoo-parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


_IMPORTS_PROBE = """
import contextlib, json, os, sys
exec(os.environ["ZOO_TEST_BEFORE"])
code = None
if sys.argv[1:]:
    from zoo.cli.main import main
    with contextlib.redirect_stdout(sys.stderr if os.environ["ZOO_TEST_QUIET"] else sys.stdout):
        try:
            code = main(sys.argv[1:])
        except SystemExit as exit:
            code = exit.code
among = json.loads(os.environ["ZOO_TEST_AMONG"])
with open(os.environ["ZOO_TEST_IMPORTED"], "w") as found:
    json.dump(sorted(m for m in among if m in sys.modules), found)
sys.exit(code or 0)
"""


def modules_imported(
    *args: str, among: tuple[str, ...], before: str = "", quiet: bool = True
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Which of the modules ``among`` ``zoo ARGS`` imports (after the Python statements
    ``before``; with no ``args``, ``before`` alone), in a fresh interpreter. ``quiet``: the
    command's stdout goes to stderr; otherwise it stays on stdout, for the test to read."""
    with tempfile.TemporaryDirectory() as folder:
        found = Path(folder, "imported.json")
        result = subprocess.run(
            [sys.executable, "-c", _IMPORTS_PROBE, *args],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "ZOO_TEST_BEFORE": before,
                "ZOO_TEST_AMONG": json.dumps(among),
                "ZOO_TEST_QUIET": "1" if quiet else "",
                "ZOO_TEST_IMPORTED": str(found),
            },
            timeout=600,
        )
        assert found.is_file(), result.stderr
        return result, json.loads(found.read_text())


NEEDS = {"tensorflow": "tensorflow", "ray": "ray", "browser": "playwright"}
"""Marker -> the package a test marked so needs."""
FIXTURES_NEEDING = {"ray_session": "ray", "ray_installed": "ray", "browser": "browser"}
"""A test using one of these fixtures is marked with what the fixture needs."""


def pytest_collection_modifyitems(config, items):
    """Tests marked ``applications`` (every keras.applications architecture, long) run only
    when the marker expression names them: ``pytest -m applications``. A test that needs
    TensorFlow, Ray or a browser (marked, or using a fixture that does) is slow, and skipped
    with one line where the package is not installed."""
    for item in items:
        for fixture, marker in FIXTURES_NEEDING.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
        for marker, package in NEEDS.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.slow)
                if importlib.util.find_spec(package) is None:
                    item.add_marker(pytest.mark.skip(reason=f"needs {package}"))
    if "applications" in config.getoption("markexpr"):
        return
    deselected = [item for item in items if item.get_closest_marker("applications")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("applications")]


COLOURS = {"red": (200, 40, 40), "green": (40, 180, 40), "blue": (40, 40, 200)}


def build_tiny_cnn(weights):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="tinycnn")
    if weights:
        model.load_weights(weights)
    return model


class TinyCNNPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="tinycnn",
                build=build_tiny_cnn,
                input_size=(32, 32),
                preprocess="tf",
                labels=["a", "b", "c", "d"],
            )
        )


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty zoo home, and the tiny CNN registered as a base model."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_BUNDLES", raising=False)
    pm.register(TinyCNNPlugin(), name="test-tinycnn")
    get_registry(refresh=True)
    yield tmp_path / "home"
    pm.unregister(name="test-tinycnn")
    get_registry(refresh=True)


def make_image(path: Path, colour, rng, size=(40, 40)) -> None:
    pixels = np.clip(np.array(colour) + rng.normal(0, 40, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def data(tmp_path) -> Path:
    """Three colour classes, 10 noisy JPEGs each."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for label, colour in COLOURS.items():
        for i in range(10):
            make_image(root / label / f"{i:02d}.jpg", colour, rng)
    return root


def small_train(data, output, on_epoch=None, engine=None, **settings):
    """The tiny CNN trained fast: ``settings`` are ``TrainSettings`` fields."""
    fast = {"epochs": 15, "batch_size": 8, "learning_rate": 0.05, "augment": 0}
    return train(
        "tinycnn",
        data,
        output,
        TrainSettings(**{**fast, **settings}),
        weights="none",
        on_epoch=on_epoch,
        engine=engine,
    )


CARD = ModelCard(
    model="pets",
    input=InputConfig(
        size=(128, 96),
        preprocess=PreprocessSpec(
            "torch", divisor=255.0, mean=(0.485, 0.456, 0.406), std=(0.2, 0.2, 0.2)
        ),
        labels=(("c1", "cat"), ("c2", "dog")),
    ),
    weights="pets.weights.h5",
    weights_sha256="ab" * 32,
    zoo_version="0.1.0",
    opset=17,
)


@pytest.fixture
def install_plugin():
    """Register plugin objects for one test, as an entry point would; unregister afterwards."""
    names = []

    def install(plugin, name):
        pm.register(plugin, name=name)
        names.append(name)

    yield install
    for name in names:
        pm.unregister(name=name)
    get_registry(refresh=True)
