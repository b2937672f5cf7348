"""The plugin authors' conformance check (``zoo.testing``, ``zoo check-plugin``)."""

from __future__ import annotations

import pytest

import zoo
from zoo.artifact import ModelCard
from zoo.errors import ZooError
from zoo.plugin_manager import pm
from zoo.registry import get_registry
from zoo.testing import check_plugin

from .conftest import run_zoo

pytestmark = pytest.mark.slow

PAIRS = ("pair-a", "pair-b")


def two_class_model(name: str, classes: int = 2, preprocess: str = "tf") -> zoo.ModelSpec:
    def build(weights):
        from zoo.keras_model import import_keras

        keras = import_keras()
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    return zoo.ModelSpec(
        name=name, build=build, input_size=(32, 32), preprocess=preprocess, labels=list(PAIRS)
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
        return original(ModelCard(**{**card.__dict__, "preprocess": tampered}))

    monkeypatch.setattr(ModelCard, "to_json", wrong_preprocessing)
    report = check_plugin(plugin([two_class_model("drifting")]))
    assert not report.passed
    failed = report.checks[-1]
    assert failed.step == "exports to ONNX and verifies"
    assert "the exported preprocessing" in failed.detail and "differs" in failed.detail


def test_the_command_exits_non_zero_with_one_line(plugin):
    name = plugin([two_class_model("three-outputs", classes=3)])
    from zoo.cli import main

    assert main(["check-plugin", name]) == 1


def test_an_unknown_plugin_is_an_error():
    with pytest.raises(ZooError, match="no plugin or distribution named 'zoo-nope'"):
        check_plugin("zoo-nope")


def test_the_command_on_an_unknown_plugin_is_one_line():
    result = run_zoo("check-plugin", "zoo-nope")
    assert result.returncode == 1
    assert result.stderr.startswith("zoo: no plugin or distribution named 'zoo-nope'")
