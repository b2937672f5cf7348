"""The example plugin, installed as a user would: ``pip install ./examples/zoo-plugin-shapes``."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("zoo_plugin_shapes", reason="pip install ./examples/zoo-plugin-shapes")
pytestmark = pytest.mark.slow

from zoo_plugin_shapes import LABELS  # noqa: E402
from zoo_plugin_shapes.train import draw  # noqa: E402


def zoo(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    """One freshly drawn picture of each shape, as PNG files."""
    folder = tmp_path_factory.mktemp("drawings")
    rng = np.random.default_rng(123)
    paths = {}
    for shape in LABELS:
        paths[shape] = folder / f"{shape}.png"
        Image.fromarray(draw(shape, rng)).save(paths[shape])
    return paths


def test_its_models_are_listed_next_to_the_builtins():
    names = {row["name"] for row in json.loads(zoo("list", "--json").stdout)}
    assert {"densenet121", "shapes", "vgg16", "resnet50", "inception_v3", "mobilenet"} <= names


def test_zoo_plugins_shows_what_it_contributes():
    rows = {row["name"]: row for row in json.loads(zoo("plugins", "--all", "--json").stdout)}
    plugin = rows["shapes"]
    assert plugin["distribution"] == "zoo-plugin-shapes" and plugin["version"] == "0.1.0"
    assert plugin["hooks"] == ["register_models", "register_preprocessors"]
    assert plugin["models"] == ["densenet121", "shapes"]
    assert plugin["preprocessors"] == ["shapes-unit"]
    assert rows["zoo.plugins.keras_applications"]["builtin"] is True


def test_the_shapes_model_recognises_shapes(drawings):
    records = json.loads(zoo("predict", "shapes", *map(str, drawings.values()), "--json").stdout)
    assert [r["top"][0]["label"] for r in records] == list(drawings)
    assert all(len(r["top"]) == 3 for r in records)  # three classes, so top-5 is top-3


def test_export_verifies_and_the_onnx_file_runs_without_tensorflow(drawings, tmp_path):
    path = tmp_path / "shapes.onnx"
    exported = json.loads(zoo("export", "shapes", "-o", str(path), "--json").stdout)
    assert exported["verified"] is True
    script = (
        "import sys\n"
        "from zoo.cli.main import main\n"
        "code = main(['predict', *sys.argv[1:], '--json', '--provider', 'cpu'])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), *map(str, drawings.values())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["top"][0]["label"] for r in records] == list(drawings)


def test_the_conformance_check_passes():
    result = zoo("check-plugin", "zoo-plugin-shapes", "--json")
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert {check["model"] for check in report["checks"]} == {"densenet121", "shapes"}
