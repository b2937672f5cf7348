"""keras_to_onnx: ONNX Runtime gives Keras's logits, with a clean image-in, logits-out interface.

Random-init weights make the softmax near uniform, which would hide conversion errors: the
models are built with ``classifier_activation=None`` and the logits are compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import modules_imported

TOLERANCE = 1e-4

MODELS = {"mobilenet": "MobileNet", "resnet50": "ResNet50"}


def build(name: str):
    from zoo.sources.keras_model import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, MODELS[name])(weights=None, classifier_activation=None)


def session(proto):
    import onnxruntime

    return onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def images(batch: int, size: int = 224) -> np.ndarray:
    """A batch in the range the ``tf`` preprocessing gives, [-1, 1]."""
    return np.random.default_rng(batch).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request):
    from zoo.exporters.convert import keras_to_onnx

    model = build(request.param)
    conversion = keras_to_onnx(model)
    assert (conversion.converter, conversion.unsupported_layers) == ("emitter", ())
    return model, conversion.proto


@pytest.mark.slow
@pytest.mark.parametrize("batch", [2, 3])
def test_logits_equal_keras_at_any_batch(converted, batch):
    model, proto = converted
    x = images(batch)
    expected = model.predict(x, verbose=0)
    (logits,) = session(proto).run(None, {"image": x})
    difference = float(np.abs(logits - expected).max())
    scale = float(np.abs(expected).max())
    print(f"{model.name} batch {batch}: max |diff| {difference:.3g}, max |logit| {scale:.3g}")
    assert logits.shape == expected.shape == (batch, 1000)
    assert difference <= TOLERANCE
    # Random-init MobileNet's logits are ~1e-18: relative to them, too.
    assert difference <= TOLERANCE * scale


@pytest.mark.slow
def test_the_image_is_the_only_input_and_weights_are_folded(converted):
    _, proto = converted
    graph = proto.graph
    (image,) = graph.input
    (output,) = graph.output
    assert image.name == "image"
    assert output.name == "probabilities"
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == [
        "batch",
        224,
        224,
        3,
    ]
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == [
        "batch",
        1000,
    ]
    # Every initializer is read; no node computes on weights alone (e.g. kernel transposes).
    initializers = {t.name for t in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    assert initializers <= read
    assert not [n.name for n in graph.node if set(n.input) <= initializers]


@pytest.mark.slow
def test_a_fixed_batch_is_static():
    from zoo.exporters.convert import keras_to_onnx

    model = build("mobilenet")
    proto = keras_to_onnx(model, batch=1, input_name="pixels", output_name="logits").proto
    (image,), (output,) = proto.graph.input, proto.graph.output
    assert (image.name, output.name) == ("pixels", "logits")
    assert image.type.tensor_type.shape.dim[0].dim_value == 1
    assert output.type.tensor_type.shape.dim[0].dim_value == 1
    x = images(1)
    (logits,) = session(proto).run(None, {"pixels": x})
    assert np.abs(logits - model.predict(x, verbose=0)).max() <= TOLERANCE


@pytest.mark.slow
def test_models_over_2_gib_are_checked_through_a_file(converted, monkeypatch):
    import onnx

    from zoo.exporters.convert import _check

    _, proto = converted
    checked = onnx.ModelProto()
    checked.CopyFrom(proto)
    monkeypatch.setattr(onnx.checker, "MAXIMUM_PROTOBUF", 1000)
    _check(checked)
    for before, after in zip(proto.graph.initializer, checked.graph.initializer, strict=True):
        assert not onnx.external_data_helper.uses_external_data(after)
        np.testing.assert_array_equal(
            onnx.numpy_helper.to_array(after), onnx.numpy_helper.to_array(before)
        )


@pytest.mark.slow
def test_multi_output_models_are_refused():
    from zoo.exporters.convert import keras_to_onnx
    from zoo.sources.keras_model import import_keras

    keras = import_keras()
    x = keras.Input((4,))
    model = keras.Model(x, [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)])
    with pytest.raises(ValueError, match="1 inputs and 2 outputs"):
        keras_to_onnx(model)


def test_importing_the_converter_loads_no_tensorflow():
    result, imported = modules_imported(
        among=("tensorflow", "tf2onnx", "onnx", "keras"), before="import zoo.exporters.convert"
    )
    assert result.returncode == 0 and imported == [], result.stderr
