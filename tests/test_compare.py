"""``zoo compare``: every image through every model, a table, JSON and a PNG grid."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from zoo.base.errors import ZooError
from zoo.cli.main import main
from zoo.runtime.compare import parse_weights

MODELS = ["mobilenet", "inception_v3"]


def test_weights_option_per_model():
    assert parse_weights("imagenet", MODELS) == {
        "mobilenet": "imagenet",
        "inception_v3": "imagenet",
    }
    assert parse_weights("none,mobilenet=m.h5", MODELS) == {
        "mobilenet": "m.h5",
        "inception_v3": "none",
    }
    assert parse_weights("m.h5", ["mobilenet"]) == {"mobilenet": "m.h5"}
    assert parse_weights("pretrained", MODELS) == {name: "pretrained" for name in MODELS}
    with pytest.raises(ZooError, match=r"write MODEL=m\.h5"):
        parse_weights("m.h5", MODELS)
    with pytest.raises(ZooError, match="'vgg16', which is not among"):
        parse_weights("vgg16=v.h5", MODELS)


@pytest.fixture
def three_photos(photo, tmp_path):
    paths = [photo]
    for angle in (90, 180):
        path = tmp_path / f"turned_{angle}.png"
        Image.open(photo).rotate(angle, expand=True).save(path)
        paths.append(path)
    return [str(p) for p in paths]


@pytest.mark.slow
def test_compare_json_table_and_plot(capsys, three_photos, tmp_path):
    plot = tmp_path / "grid.png"
    args = [*three_photos, "--models", ",".join(MODELS), "--weights", "none", "--top", "3"]
    assert main(["compare", *args, "--json", "--plot", str(plot)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["image"], r["model"]) for r in records] == [
        (image, model) for image in three_photos for model in MODELS
    ]
    assert all(len(r["top"]) == 3 and r["backend"] == "keras" for r in records)
    with Image.open(plot) as grid:
        assert grid.format == "PNG"
        width, height = grid.size
        assert width > 600 and height > 3 * 200  # three rows, a thumbnail and two charts each
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".grid")] == []

    assert main(["compare", *args]) == 0
    table = capsys.readouterr().out
    assert table.count("mobilenet") == 3 and table.count("inception_v3") == 3


@pytest.mark.slow
def test_a_bad_image_and_a_model_without_weights_leave_the_rest(capsys, three_photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    images = [three_photos[0], str(bad)]
    code = main(
        ["compare", *images, "--models", "mobilenet,vgg16", "--weights", "mobilenet=none", "--json"]
    )
    assert code == 1
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert [r.get("model") for r in records] == ["mobilenet", None]
    assert records[1] == {
        "image": str(bad),
        "error": "not an image, or a format Pillow cannot read",
    }
    errors = captured.err.splitlines()
    assert len(errors) == 2
    assert any("notes.jpg" in line for line in errors)
    missing = "zoo: vgg16: vgg16_weights_tf_dim_ordering_tf_kernels.h5 is not in the Keras cache"
    assert any(line.startswith(missing) for line in errors)


def test_an_unwritable_plot_fails_before_any_model_loads(capsys, photo, tmp_path):
    code = main(["compare", str(photo), "--plot", str(tmp_path / "missing" / "grid.png")])
    assert code == 1
    folder = tmp_path / "missing"
    expected = f"zoo: --plot {folder / 'grid.png'}: folder {folder} does not exist\n"
    assert capsys.readouterr().err == expected


def test_provider_and_threads_reach_each_model(capsys, photo, monkeypatch):
    import zoo.runtime.compare

    loads = []

    def load(*args):
        loads.append(args)
        raise ZooError("not loading in this test")

    monkeypatch.setattr(zoo.runtime.compare, "load", load)
    options = ["--backend", "onnx", "--provider", "cpu", "--threads", "1", "--weights", "none"]
    assert main(["compare", str(photo), "--models", "mobilenet,resnet50", *options]) == 1
    assert loads == [
        ("mobilenet", "onnx", "none", "cpu", 1),
        ("resnet50", "onnx", "none", "cpu", 1),
    ]
