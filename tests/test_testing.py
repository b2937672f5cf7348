"""The plugin authors' conformance check (``zoo.runtime.conformance``, ``zoo check-plugin``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import zoo
from zoo.base.errors import ZooError
from zoo.model.card import ModelCard
from zoo.plugin.manager import pm
from zoo.plugin.registry import get_registry
from zoo.runtime.conformance import check_plugin

from .conftest import run_zoo

pytestmark = pytest.mark.slow

PAIRS = ("pair-a", "pair-b")


def two_class_model(
    name: str, classes: int = 2, preprocess: str = "tf", head: str = "activation", **spec
) -> zoo.ModelSpec:
    """A small CNN whose head is a ``Dense`` with a softmax ``activation``, a ``Dense`` then a
    ``Softmax()`` layer (``head="layer"``), or a bare ``Dense``: logits (``head="logits"``)."""

    def build(weights):
        from zoo.sources.keras_model import import_keras

        keras = import_keras()
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        activation = "softmax" if head == "activation" else None
        outputs = keras.layers.Dense(classes, activation=activation)(x)
        if head == "layer":
            outputs = keras.layers.Softmax()(outputs)
        return keras.Model(inputs, outputs)

    return zoo.ModelSpec(
        name=name,
        build=build,
        input_size=(32, 32),
        preprocess=preprocess,
        labels=list(PAIRS),
        **spec,
    )


@pytest.fixture
def plugin():
    """Install a plugin object under a name for one test, as an entry point would."""
    installed = []

    def install(models, name="zoo-test-plugin"):
        class Plugin:
            @zoo.hookimpl
            def register_models(self, register):
                for model in models:
                    register(model)

        pm.register(Plugin(), name=name)
        installed.append(name)
        get_registry(refresh=True)
        return name

    yield install
    for name in installed:
        pm.unregister(name=name)
    get_registry(refresh=True)


def test_a_conforming_plugin_passes(plugin):
    report = check_plugin(plugin([two_class_model("good")]))
    assert report.passed, report.to_dict()
    assert [c.step for c in report.checks] == [
        "labels",
        "builds and predicts on keras",
        "exports to ONNX and verifies",
        "metadata round-trips",
        "predicts from the .onnx",
    ]


def test_labels_that_do_not_match_the_outputs_fail_clearly(plugin):
    report = check_plugin(plugin([two_class_model("three-outputs", classes=3)]))
    assert not report.passed
    failed = report.checks[-1]
    assert failed.step == "builds and predicts on keras"
    assert failed.detail == "model 'three-outputs' gives outputs of shape (1, 3) but has 2 labels"


def test_preprocessing_that_differs_in_the_onnx_fails_clearly(plugin, monkeypatch):
    """An exporter that wrote another preprocessing into the file than Keras uses."""
    original = ModelCard.to_json

    def wrong_preprocessing(card):
        tampered = zoo.PreprocessSpec("tf", divisor=255.0, mean=(1.0, 1.0, 1.0))
        return original(replace(card, input=replace(card.input, preprocess=tampered)))

    monkeypatch.setattr(ModelCard, "to_json", wrong_preprocessing)
    report = check_plugin(plugin([two_class_model("drifting")]))
    assert not report.passed
    failed = report.checks[-1]
    assert failed.step == "exports to ONNX and verifies"
    assert "the exported preprocessing" in failed.detail and "differs" in failed.detail


def test_the_command_exits_non_zero_with_one_line(plugin):
    name = plugin([two_class_model("three-outputs", classes=3)])
    from zoo.cli.main import main

    assert main(["check-plugin", name]) == 1


def test_an_unknown_plugin_is_an_error():
    with pytest.raises(ZooError, match="no plugin or distribution named 'zoo-nope'"):
        check_plugin("zoo-nope")


def test_the_command_on_an_unknown_plugin_is_one_line():
    result = run_zoo("check-plugin", "zoo-nope")
    assert result.returncode == 1
    assert result.stderr.startswith("zoo: no plugin or distribution named 'zoo-nope'")


def test_a_logits_head_declared_as_probabilities_is_refused_in_one_line(plugin):
    report = check_plugin(plugin([two_class_model("raw", head="logits")]))
    [failed] = report.failures()
    assert failed.step == "builds and predicts on keras"
    assert failed.detail.startswith("model 'raw' outputs logits, not probabilities (a row sums")
    assert failed.detail.endswith("declare output='logits' in its ModelSpec")


def test_a_declared_logits_head_gets_zoos_softmax_and_verifies(plugin):
    report = check_plugin(plugin([two_class_model("raw", head="logits", output="logits")]))
    assert report.passed, report.to_dict()
    scores = [
        p.score
        for p in zoo.load("raw", weights="none").predict(
            zoo.__path__[0] + "/data/samples/cat.jpg", top=2
        )
    ]
    assert min(scores) >= 0 and abs(sum(scores) - 1) < 1e-6


def test_a_separate_softmax_layer_is_compared_on_its_logits(plugin, tmp_path):
    import onnx

    from zoo.exporters.onnx import export_onnx

    plugin([two_class_model("layered", head="layer")])
    result = export_onnx(
        get_registry().model("layered"), tmp_path / "m.onnx", zoo.ExportOptions(weights="none")
    )
    assert result.report.passed and result.report.max_abs_diff_logits is not None
    outputs = [o.name for o in onnx.load(str(result.path)).graph.output]
    assert outputs == ["logits", "probabilities"]


def test_check_plugin_checks_one_model_and_names_every_failure(plugin, capsys):
    name = plugin(
        [
            two_class_model("good"),
            two_class_model("three-outputs", classes=3),
            two_class_model("raw", head="logits"),
        ]
    )
    report = check_plugin(name, models=["good"])
    assert report.passed and {c.model for c in report.checks} == {"good"}
    with pytest.raises(ZooError, match="does not register 'mobilenet'"):
        check_plugin(name, models=["mobilenet"])

    from zoo.cli.main import main

    assert main(["check-plugin", name, "--models", "three-outputs", "--models", "raw"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"zoo: plugin {name!r} fails the conformance check (three-outputs: ")
    assert "; raw: builds and predicts on keras: model 'raw' outputs logits" in line


def test_a_model_whose_build_raises_names_the_plugin_and_the_model(plugin):
    def broken(weights):
        raise RuntimeError("no GPU kernel for this layer")

    name = plugin(
        [
            zoo.ModelSpec(
                name="broken", build=broken, input_size=(8, 8), preprocess="tf", labels=list(PAIRS)
            )
        ]
    )
    with pytest.raises(zoo.ZooError) as error:
        zoo.load("broken", weights="none")
    assert str(error.value) == (
        f"plugin {name!r}: model 'broken' failed to build: RuntimeError: no GPU kernel for this "
        "layer"
    )
