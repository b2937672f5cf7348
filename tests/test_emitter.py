"""emitter: the direct Keras-layer -> ONNX emitter gives Keras's outputs on ONNX Runtime.

Compared on logits (the last layer's activation set to linear, as the exporter does): with
random-init weights the softmax is near uniform and would hide errors. The small model uses
every supported layer, with random batch-normalisation statistics: random-init ones are an
identity that would hide a wrong fold.
"""

from __future__ import annotations

import numpy as np
import pytest

TOLERANCE = 1e-4
"""Max |ONNX - Keras| over max |Keras|."""

APPLICATIONS = {
    "vgg16": ("VGG16", 224),
    "resnet50": ("ResNet50", 224),
    "inception_v3": ("InceptionV3", 299),
    "mobilenet": ("MobileNet", 224),
}

pytestmark = pytest.mark.slow  # every test builds Keras models


@pytest.fixture(scope="module")
def keras():
    from zoo.keras_model import import_keras

    return import_keras()


@pytest.fixture
def direct_only(monkeypatch):
    """keras_to_onnx, failing the test if it falls back to tf2onnx."""
    from zoo.exporters import convert, tf2onnx_fallback

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to tf2onnx")

    monkeypatch.setattr(tf2onnx_fallback, "convert_with_tf2onnx", refuse)
    return convert.keras_to_onnx


def run(proto, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (output,) = session.run(None, {"image": x})
    return output


def relative_difference(model, proto, x: np.ndarray) -> tuple[float, float]:
    """max |ONNX - Keras| and max |Keras| on ``x``."""
    expected = np.asarray(model(x, training=False))
    actual = run(proto, x)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max()), float(np.abs(expected).max())


def check(model, proto, shape: tuple, batches=(1, 3)) -> None:
    for batch in batches:
        x = np.random.default_rng(batch).uniform(-1, 1, (batch, *shape)).astype(np.float32)
        difference, scale = relative_difference(model, proto, x)
        print(f"{model.name} batch {batch}: max |diff| {difference:.3g}, max |out| {scale:.3g}")
        assert difference <= TOLERANCE * scale


@pytest.fixture(scope="module", params=sorted(APPLICATIONS))
def application(request, keras):
    name, size = APPLICATIONS[request.param]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None)
    assert model.layers[-1].activation is keras.activations.softmax
    model.layers[-1].activation = keras.activations.linear  # as the exporter does: logits
    return model, size


def test_the_built_in_models_give_keras_logits(application, direct_only):
    model, size = application
    proto = direct_only(model, output_name="logits")
    check(model, proto, (size, size, 3))
    graph = proto.graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["logits"]
    assert {n.op_type for n in graph.node}.isdisjoint({"BatchNormalization", "Softmax"})
    assert graph.node[0].op_type == "Transpose" and graph.node[0].input == ["image"]
    # NHWC -> NCHW once, and back at most once (before Flatten or Reshape).
    assert sum(n.op_type == "Transpose" for n in graph.node) <= 2


def small_model(keras):
    """Every supported layer, odd image sizes, BatchNormalization folded and not."""
    layers = keras.layers
    image = keras.Input((15, 17, 3))
    a = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(image)  # 8 x 9
    a = layers.BatchNormalization()(a)  # folds, adding a bias
    a = layers.ReLU(6.0)(a)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6")(a)
    b = layers.BatchNormalization(center=False)(b)  # after an activation: Mul, Add
    c = layers.Conv2D(16, 1)(a)
    c = layers.BatchNormalization(scale=False)(c)  # folds into the bias
    c = layers.Activation("relu")(c)
    d = layers.Conv2D(16, 3, padding="same", groups=2, dilation_rate=2)(a)
    e = layers.BatchNormalization()(d)  # d is read twice: Mul, Add
    m = layers.Add()([e, d, c])
    m = layers.Concatenate()([b, m])  # channels
    p = layers.AveragePooling2D(3, strides=2, padding="same")(m)  # 4 x 5
    q = layers.MaxPooling2D(2, strides=1, padding="same")(p)
    # After a ReLU, as in ResNet50: ONNX Runtime fuses the Pad into the MaxPool, which then
    # ignores the padding instead of taking its zeros into the max.
    q = layers.ZeroPadding2D(((1, 0), (0, 1)))(layers.ReLU()(q))  # 5 x 6
    q = layers.MaxPooling2D(2)(q)  # 2 x 3
    flat = layers.Flatten()(q)  # in NHWC order
    flat = layers.Dense(10, activation="relu")(layers.Dropout(0.5)(flat))
    channels = layers.Activation("softmax")(p)  # over the channels
    channels = layers.GlobalAveragePooling2D(keepdims=True)(channels)
    channels = layers.Reshape((6,))(layers.Conv2D(6, 1)(channels))
    pooled = layers.Dense(4, use_bias=False)(layers.GlobalAveragePooling2D()(q))
    joined = layers.Concatenate()([flat, channels, pooled])
    model = keras.Model(image, layers.Dense(7, activation="softmax")(joined))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            for variable, low, high in [
                (layer.moving_mean, -1, 1),
                (layer.moving_variance, 0.2, 2),
                (layer.gamma, 0.5, 2),
                (layer.beta, -1, 1),
            ]:
                if variable is not None:
                    variable.assign(rng.uniform(low, high, variable.shape))
    return model


def test_every_supported_layer_gives_keras_outputs(keras, direct_only):
    keras.utils.set_random_seed(0)
    model = small_model(keras)
    probabilities = direct_only(model)
    check(model, probabilities, (15, 17, 3))
    model.layers[-1].activation = keras.activations.linear
    logits = direct_only(model, output_name="logits")
    check(model, logits, (15, 17, 3))
    ops = [n.op_type for n in logits.graph.node]
    assert ops.count("Mul") == 2  # the two batch normalisations that could not fold
    assert ops.count("Softmax") == 1  # over the channels; the final one is gone
    assert probabilities.graph.node[-1].op_type == "Softmax"


def test_a_fixed_batch_is_static(keras, direct_only):
    keras.utils.set_random_seed(0)
    model = small_model(keras)
    proto = direct_only(model, batch=2)
    for value in (proto.graph.input[0], proto.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_value == 2
    check(model, proto, (15, 17, 3), batches=(2,))


def test_an_unsupported_layer_falls_back_to_tf2onnx(keras, monkeypatch):
    from zoo.exporters import convert, tf2onnx_fallback
    from zoo.exporters.emitter import UnsupportedLayer, emit_onnx

    layers = keras.layers
    keras.utils.set_random_seed(0)
    image = keras.Input((9, 9, 3))
    x = layers.Conv2D(4, 3, activation="relu")(image)
    x = layers.LayerNormalization()(x)
    model = keras.Model(image, layers.Dense(5)(layers.Flatten()(x)))
    with pytest.raises(UnsupportedLayer, match="LayerNormalization"):
        emit_onnx(model, 17, None, "image", "probabilities")

    fallbacks = []
    original = tf2onnx_fallback.convert_with_tf2onnx

    def spy(*args):
        fallbacks.append(args)
        return original(*args)

    monkeypatch.setattr(tf2onnx_fallback, "convert_with_tf2onnx", spy)
    proto = convert.keras_to_onnx(model)
    assert len(fallbacks) == 1
    check(model, proto, (9, 9, 3))
