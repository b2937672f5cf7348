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
    from zoo.sources.keras_model import import_keras

    return import_keras()


@pytest.fixture
def direct_only(monkeypatch):
    """keras_to_onnx, failing the test if it falls back to tf2onnx."""
    from zoo.exporters import convert, tf2onnx_fallback

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to tf2onnx")

    monkeypatch.setattr(tf2onnx_fallback, "convert_with_tf2onnx", refuse)

    def convert_directly(model, **options):
        conversion = convert.keras_to_onnx(model, **options)
        assert conversion.converter == convert.EMITTER
        return conversion.proto

    return convert_directly


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


def check(model, proto, shape: tuple, batches=(1, 3), output=None, spread=1.0) -> None:
    """ONNX Runtime gives Keras's outputs on uniform random inputs in [-spread, spread]."""
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    assert output is None or [o.name for o in proto.graph.output] == [output]
    for batch in batches:
        x = np.random.default_rng(batch).uniform(-spread, spread, (batch, *shape))
        difference, scale = relative_difference(model, proto, x.astype(np.float32))
        print(f"{model.name} batch {batch}: max |diff| {difference:.3g}, max |out| {scale:.3g}")
        assert scale > 0
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


def random_statistics(model) -> None:
    """Random BatchNormalization statistics: random-init ones are an identity that would hide
    a wrong fold."""
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers():
        if type(layer).__name__ == "BatchNormalization":
            for variable, low, high in [
                (layer.moving_mean, -1, 1),
                (layer.moving_variance, 0.2, 2),
                (layer.gamma, 0.5, 2),
                (layer.beta, -1, 1),
            ]:
                if variable is not None:
                    variable.assign(rng.uniform(low, high, variable.shape))


def _conv_input(keras, channels=6, size=(9, 11)):
    """An image input and a channels-first value computed from it (a Conv's output)."""
    image = keras.Input((*size, 3))
    return image, keras.layers.Conv2D(channels, 3, padding="same")(image)


def _application_layer(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(f"keras.src.applications.{module}"), name)


def _squeeze_excite(keras):
    """EfficientNet's: pooled, reshaped to (1, 1, C), two 1x1 convolutions, multiplied."""
    layers = keras.layers
    image, x = _conv_input(keras, 8)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("swish")(x)
    se = layers.GlobalAveragePooling2D()(x)
    se = layers.Reshape((1, 1, 8))(se)
    se = layers.Conv2D(2, 1, activation="swish")(se)
    se = layers.Conv2D(8, 1, activation="sigmoid")(se)
    return image, layers.Multiply()([x, se])


def _hard_squeeze_excite(keras):
    """MobileNetV3's: relu6(x + 3) * (1 / 6) as Keras operations, keepdims pooling."""
    layers = keras.layers
    image, x = _conv_input(keras, 8)
    se = layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = layers.Conv2D(8, 1)(se)
    se = layers.ReLU(6.0)(se + 3.0) * (1.0 / 6.0)
    return image, layers.Activation("hard_swish")(layers.Multiply()([x, se]))


def _convnext_block(keras):
    """ConvNeXt's: a Sequential stem (Conv2D, LayerNormalization), a 7x7 depthwise grouped
    Conv2D, LayerNormalization, Dense on 4-D, exact GELU, LayerScale, a residual ``+``."""
    layers = keras.layers
    image = keras.Input((15, 15, 3))
    stem = keras.Sequential(
        [layers.Conv2D(8, 2, strides=2), layers.LayerNormalization(epsilon=1e-6)]
    )
    x = stem(image)
    y = layers.Conv2D(8, 7, padding="same", groups=8)(x)
    y = layers.LayerNormalization(epsilon=1e-6)(y)
    y = layers.Dense(32)(y)
    y = layers.Activation("gelu")(y)
    y = layers.Dense(8)(y)
    layer_scale = _application_layer("convnext", "LayerScale")(0.5, 8)
    layer_scale.build((None, 7, 7, 8))
    layer_scale.gamma.assign(np.linspace(-1, 1, 8))
    y = layer_scale(y)
    y = _application_layer("convnext", "StochasticDepth")(0.1)(y)
    x = x + layers.Activation("linear")(y)
    x = layers.GlobalAveragePooling2D()(x)
    return image, layers.LayerNormalization(center=False, scale=False)(x)


def _inception_resnet_scale(keras):
    """InceptionResNetV2's ``CustomScaleLayer``: x + residual * scale."""
    layers = keras.layers
    image, x = _conv_input(keras, 6)
    residual = layers.Conv2D(6, 1, activation="relu")(x)
    scale = _application_layer("inception_resnet_v2", "CustomScaleLayer")(0.17)
    return image, scale([x, residual])


def _separable(keras):
    """SeparableConv2D (Xception, NASNet): a depth multiplier, strides, then a folded BN."""
    layers = keras.layers
    image, x = _conv_input(keras, 4)
    x = layers.SeparableConv2D(6, 3, strides=2, padding="same", depth_multiplier=2)(x)
    x = layers.BatchNormalization()(x)
    y = layers.SeparableConv2D(5, 3, dilation_rate=2, use_bias=False, activation="relu")(image)
    return image, layers.Concatenate()([layers.Flatten()(x), layers.Flatten()(y)])


def _preprocessing(keras):
    """EfficientNet's stem: Rescaling, an unadapted and a given Normalization."""
    layers = keras.layers
    image = keras.Input((5, 7, 3))
    x = layers.Rescaling(1 / 255.0)(image)
    x = layers.Normalization(axis=-1)(x)
    x = layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.05, 0.0, 0.06])(x)
    x = layers.Rescaling([2.0, 0.5, 1.0], offset=-1.0)(x)
    return image, layers.Conv2D(4, 1)(x)  # channels first: Rescaling applies there too


def _cropping_and_pooling(keras):
    """NASNet's Cropping2D; global max pooling, kept and not."""
    layers = keras.layers
    image, x = _conv_input(keras, 4)
    x = layers.Cropping2D(((1, 2), (0, 1)))(x)
    kept = layers.Flatten()(layers.GlobalMaxPooling2D(keepdims=True)(x))
    flat = layers.GlobalMaxPooling2D()(layers.Cropping2D((1, 0))(x))
    return image, layers.Concatenate()([kept, flat])


def _merges_and_operations(keras):
    """Merge layers and ``keras.ops`` arithmetic, constants on either side and per channel."""
    layers = keras.layers
    image, a = _conv_input(keras, 4)
    b = layers.Conv2D(4, 1)(a)
    m = layers.Subtract()([a, b])
    m = layers.Maximum()([m, b])
    m = layers.Minimum()([m, a, b])
    m = layers.Average()([m, a])
    m = 2.0 - m * np.float32([1, 2, 3, 4])
    m = m / 3.0 + layers.Identity()(a)
    return image, keras.ops.maximum(m, b) / (keras.ops.minimum(a, 0.5) + 4.0)


def _nested_functional(keras):
    """A functional model called as a layer, its BatchNormalization folding inside."""
    layers = keras.layers
    inner_input = keras.Input((9, 11, 6))
    inner = layers.BatchNormalization()(layers.Conv2D(5, 3)(inner_input))
    inner = keras.Model(inner_input, layers.ReLU()(inner))
    image, x = _conv_input(keras, 6)
    return image, layers.Dense(3)(layers.Flatten()(inner(x)))


LAYER_CASES = {
    "squeeze_excite": _squeeze_excite,
    "hard_squeeze_excite": _hard_squeeze_excite,
    "convnext_block": _convnext_block,
    "inception_resnet_scale": _inception_resnet_scale,
    "separable": _separable,
    "preprocessing": _preprocessing,
    "cropping_and_pooling": _cropping_and_pooling,
    "merges_and_operations": _merges_and_operations,
    "nested_functional": _nested_functional,
}


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_each_converter_gives_keras_outputs(keras, case, opset):
    from zoo.exporters.emitter import emit_onnx

    keras.utils.set_random_seed(0)
    image, output = LAYER_CASES[case](keras)
    model = keras.Model(image, output)
    random_statistics(model)
    proto = emit_onnx(model, opset, None, "image", "output")
    check(model, proto, tuple(image.shape[1:]), output="output")


def test_any_image_size_pads_the_same_way(keras, direct_only):
    """A model that takes any size (MobileNetV3's): "same" padding becomes SAME_UPPER, and the
    size the caller gives is the graph's declared input."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    image = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(image)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.AveragePooling2D(2, strides=2, padding="same")(x)
    model = keras.Model(image, layers.GlobalAveragePooling2D()(x))
    for size in [(9, 11), (16, 15)]:
        proto = direct_only(model, input_shape=(*size, 3))
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_value for d in dims[1:]] == [*size, 3]
        check(model, proto, (*size, 3))


ACTIVATION_NAMES = [
    "linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus", "softmax",
    "silu", "swish", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
]  # fmt: skip


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_each_activation_gives_keras_outputs(keras, activation, opset):
    """On a channels-first value (a Conv's output, with the activation as the Conv's
    attribute) and in Keras's layout (a Dense's); inputs spread over [-4, 4]."""
    from zoo.exporters.emitter import emit_onnx

    layers = keras.layers
    keras.utils.set_random_seed(0)
    image = keras.Input((5, 6, 3))
    x = layers.Conv2D(4, 1, activation=activation)(image)
    y = layers.Activation(activation)(layers.Dense(4)(layers.Flatten()(image)))
    model = keras.Model(image, layers.Concatenate()([layers.Flatten()(x), y]))
    proto = emit_onnx(model, opset, None, "image", "output")
    check(model, proto, (5, 6, 3), output="output", spread=4.0)


def test_a_layer_without_converter_falls_back_to_tf2onnx_naming_every_type(keras, monkeypatch):
    from zoo.exporters import convert, tf2onnx_fallback
    from zoo.exporters.emitter import UnsupportedLayer, emit_onnx, unsupported_layer_types

    class Doubling(keras.layers.Layer):  # a plugin's own layer
        def call(self, x):
            return x * 2.0

    layers = keras.layers
    keras.utils.set_random_seed(0)
    image = keras.Input((9, 9, 3))
    x = layers.Conv2D(4, 3, activation="relu")(image)
    x = layers.UpSampling2D()(Doubling()(x))
    model = keras.Model(image, layers.Dense(5)(layers.Flatten()(x)))
    assert unsupported_layer_types(model) == ("Doubling", "UpSampling2D")
    with pytest.raises(UnsupportedLayer, match="Doubling, UpSampling2D") as raised:
        emit_onnx(model, 17, None, "image", "probabilities")
    assert raised.value.layer_types == ("Doubling", "UpSampling2D")

    fallbacks = []
    original = tf2onnx_fallback.convert_with_tf2onnx

    def spy(*args):
        fallbacks.append(args)
        return original(*args)

    monkeypatch.setattr(tf2onnx_fallback, "convert_with_tf2onnx", spy)
    conversion = convert.keras_to_onnx(model)
    assert len(fallbacks) == 1
    assert conversion.converter == "tf2onnx"
    assert conversion.unsupported_layers == ("Doubling", "UpSampling2D")
    check(model, conversion.proto, (9, 9, 3))


def test_an_unsupported_setting_names_its_layer_type(keras):
    from zoo.exporters.emitter import UnsupportedLayer, emit_onnx

    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.ReLU(threshold=0.5)(image))
    with pytest.raises(UnsupportedLayer) as raised:
        emit_onnx(model, 17, None, "image", "output")
    assert raised.value.layer_types == ("ReLU",)


def test_ops_tf2onnx_cannot_convert_fail_in_one_line_naming_them(keras, monkeypatch):
    """A plugin's layer computing erfc, which tf2onnx has no conversion for: one line naming
    the op and the layer that forced the fallback, and no graph reaches ONNX Runtime."""
    import tensorflow as tf

    from zoo.base.errors import ZooError
    from zoo.exporters import convert

    class Erfc(keras.layers.Layer):
        def call(self, x):
            return tf.math.erfc(x)

    image = keras.Input((4, 4, 3))
    model = keras.Model(image, keras.layers.Flatten()(Erfc()(image)))
    checked = []
    monkeypatch.setattr(convert, "_check", checked.append)
    with pytest.raises(ZooError) as raised:
        convert.keras_to_onnx(model, check=False)
    message = str(raised.value)
    assert "\n" not in message
    assert "Erfc" in message.split("TensorFlow ops")[1]  # the op
    assert "(Erfc)" in message  # the layer
    assert not checked


def test_a_fallback_graph_is_always_checked(keras, monkeypatch):
    from zoo.exporters import convert

    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    image = keras.Input((4, 4, 3))
    model = keras.Model(image, keras.layers.Flatten()(Doubling()(image)))
    checked = []
    monkeypatch.setattr(convert, "_check", checked.append)
    conversion = convert.keras_to_onnx(model, check=False)
    assert conversion.converter == convert.TF2ONNX
    assert checked == [conversion.proto]
