"""Keras 3 functional model -> ONNX graph, emitted layer by layer, without TensorFlow tracing.

tf2onnx traces the model with TensorFlow and rewrites the TensorFlow graph: seconds per model.
The built-in models use a dozen layer types, each of which has a direct ONNX equivalent, so
this module walks the functional graph and emits ONNX nodes for them with ``onnx.helper``,
taking the weights from the layers as NumPy arrays. A layer (or setting) it does not know
raises ``UnsupportedLayer``, and ``keras_to_onnx`` falls back to tf2onnx.

Layout: Keras image tensors are NHWC, ONNX convolutions and pools NCHW. The graph input stays
NHWC; one Transpose follows it and values stay NCHW from there ("channels first"), the kernels
transposed in NumPy. A value goes back to Keras's layout only where the layout shows: Flatten,
Reshape, Dense, the output.

Only ``keras_to_onnx`` imports this module, when a Keras model exists: importing Keras here
costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper

MIN_OPSET = 13
"""Softmax over one axis (13), Pad and Clip with tensor inputs (11)."""

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


class UnsupportedLayer(Exception):
    """The model has a layer, or a setting, that this emitter does not convert."""


@dataclass(frozen=True)
class _Value:
    """A Keras tensor as the graph holds it."""

    name: str
    shape: tuple
    """Keras's shape (NHWC for images), batch first."""
    channels_first: bool = False
    """A 4-D NHWC tensor held as NCHW."""
    conv: onnx.NodeProto | None = None
    """The Conv that computes this value, when nothing but the next layer reads it: a
    BatchNormalization there folds into the Conv's weights."""


class _Graph:
    """The nodes and weights emitted so far, with unique names."""

    def __init__(self, reserved: tuple[str, ...]):
        self.nodes: list[onnx.NodeProto] = []
        self.weights: dict[str, np.ndarray] = {}
        self._names = set(reserved)
        self._scalars: dict[float, str] = {}

    def unique(self, name: str) -> str:
        candidate, count = name, 1
        while candidate in self._names:
            count += 1
            candidate = f"{name}_{count}"
        self._names.add(candidate)
        return candidate

    def weight(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        self.weights[name] = array
        return name

    def scalar(self, value: float) -> str:
        """A float32 scalar initializer, shared by every node that reads the same value."""
        if value not in self._scalars:
            self._scalars[value] = self.weight(f"scalar_{value:g}", np.float32(value))
        return self._scalars[value]

    def add(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        """Append a one-output node; returns its output's name."""
        output = self.unique(name)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def nchw(self, x: _Value) -> _Value:
        if x.channels_first:
            return x
        if len(x.shape) != 4:
            raise UnsupportedLayer(f"a {len(x.shape)}-D tensor where an image is expected")
        name = self.add("Transpose", [x.name], f"{x.name}/nchw", perm=TO_NCHW)
        return _Value(name, x.shape, channels_first=True)

    def keras_layout(self, x: _Value) -> _Value:
        if not x.channels_first:
            return x
        return _Value(self.add("Transpose", [x.name], f"{x.name}/nhwc", perm=TO_NHWC), x.shape)


def emit_onnx(
    model, opset: int, batch: int | None, input_name: str, output_name: str
) -> onnx.ModelProto:
    """``model`` as ONNX, for ``keras_to_onnx`` (which documents the interface).

    Raises ``UnsupportedLayer`` for anything but a functional model made of the layers in
    ``CONVERTERS``, float32, channels last, each layer called on its input tensors only.
    """
    if opset < MIN_OPSET:
        raise UnsupportedLayer(f"opset {opset}: the direct emitter needs {MIN_OPSET} or newer")
    if not hasattr(model, "_nodes_by_depth"):
        raise UnsupportedLayer(f"{type(model).__name__} is not a functional model")
    nodes = [  # deepest first is a topological order, as in Keras's Function._run_through_graph
        node
        for depth in sorted(model._nodes_by_depth, reverse=True)
        for node in model._nodes_by_depth[depth]
        if not node.is_input
    ]
    readers = Counter(id(t) for node in nodes for t in node.input_tensors)
    readers.update(id(t) for t in model.outputs)

    graph = _Graph(reserved=(input_name, output_name))
    [image], [result] = model.inputs, model.outputs
    values = {id(image): _Value(input_name, tuple(image.shape))}
    if len(image.shape) == 4:
        values[id(image)] = graph.nchw(values[id(image)])
    for node in nodes:
        layer = node.operation
        _check_layer(layer)
        # Keras records the defaults (mask=None, training=False); anything else changes the call.
        keywords = node.arguments.kwargs
        given = [k for k, v in keywords.items() if v is not None and v is not False]
        if given or len(node.outputs) != 1:
            raise UnsupportedLayer(f"{layer.name}: called with {given}, or not one output")
        [output] = node.outputs
        inputs = [values[id(t)] for t in node.input_tensors]
        value = CONVERTERS[type(layer)](graph, layer, inputs, tuple(output.shape))
        if readers[id(output)] > 1:
            value = dataclasses.replace(value, conv=None)
        values[id(output)] = value

    last = graph.keras_layout(values[id(result)]).name
    if last == input_name:  # the model computes nothing
        graph.nodes.append(helper.make_node("Identity", [input_name], [output_name]))
    else:  # the last value takes the output's name
        for node in graph.nodes:
            for names in (node.input, node.output):
                names[:] = [output_name if name == last else name for name in names]

    def tensor(name: str, shape: tuple) -> onnx.ValueInfoProto:
        dims = ["batch" if batch is None else batch, *shape[1:]]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    opset_id = helper.make_opsetid("", opset)
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            model.name,
            [tensor(input_name, image.shape)],
            [tensor(output_name, result.shape)],
        ),
        opset_imports=[opset_id],
        ir_version=helper.find_min_ir_version_for([opset_id]),
    )
    for name in list(graph.weights):  # popped: each array is freed once its copy is in place
        _write_initializer(proto.graph.initializer.add(), name, graph.weights.pop(name))
    return proto


def _write_initializer(tensor: onnx.TensorProto, name: str, array: np.ndarray) -> None:
    """``numpy_helper.from_array``, but written into its place in the model: handing a
    finished TensorProto to ``make_graph``, ``append`` or ``extend`` copies it, a second copy of
    the weights (0.5 GB for VGG16)."""
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def _check_layer(layer) -> None:
    if type(layer) not in CONVERTERS:
        raise UnsupportedLayer(f"{layer.name}: {type(layer).__name__}")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise UnsupportedLayer(f"{layer.name}: data_format {layer.data_format}")
    if layer.compute_dtype != "float32":
        raise UnsupportedLayer(f"{layer.name}: computes in {layer.compute_dtype}")
    if getattr(layer, "quantization_mode", None):
        raise UnsupportedLayer(f"{layer.name}: quantized ({layer.quantization_mode})")


def _axis(x: _Value, axis: int) -> int:
    """Keras's ``axis`` of ``x`` as an axis of the ONNX tensor that holds it."""
    axis %= len(x.shape)
    return TO_NCHW.index(axis) if x.channels_first else axis


def _float32(variable) -> np.ndarray:
    """A variable's value: one copy at most (``keras.ops.convert_to_numpy`` makes two), read
    from the backend tensor (``np.asarray(variable)`` trips NumPy 2's ``copy`` deprecation)."""
    return np.asarray(variable.value, dtype=np.float32)


def _same_layout(graph: _Graph, xs: list[_Value]) -> list[_Value]:
    """The inputs of a merge, all channels first if any is."""
    if len({len(x.shape) for x in xs}) > 1:
        raise UnsupportedLayer("merging tensors of different ranks")
    if any(x.channels_first for x in xs):
        return [graph.nchw(x) for x in xs]
    return xs


def _pads(padding: str, size: tuple, kernel: tuple, strides: tuple, dilations: tuple) -> list:
    """ONNX ``pads`` (begins, then ends) for Keras's ``padding`` over the spatial ``size``.

    TensorFlow's "same" pads so that out = ceil(in / stride), splitting the padding evenly and
    putting an odd pixel at the end (bottom, right): ONNX's SAME_UPPER. The pads are written
    out rather than left to ``auto_pad``, which every runtime then reads alike.
    """
    padding = padding.lower()  # pooling layers keep it as given
    if padding == "valid":
        return [0] * 2 * len(size)
    if padding != "same" or None in size:
        raise UnsupportedLayer(f"padding {padding!r} over an input of size {size}")
    totals = [
        max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        for n, k, s, d in zip(size, kernel, strides, dilations, strict=True)
    ]
    return [t // 2 for t in totals] + [t - t // 2 for t in totals]


def _activation(graph: _Graph, function, x: _Value, name: str) -> _Value:
    """``function`` (one of Keras's activations) applied to ``x``.

    Read from the layer at conversion time: the exporter swaps the final softmax for linear.
    """
    if function is keras.activations.linear:
        return x
    if function is keras.activations.relu:
        return _Value(graph.add("Relu", [x.name], name), x.shape, x.channels_first)
    if function is keras.activations.relu6:
        return _clip(graph, x, 6.0, name)
    if function is keras.activations.softmax:  # over Keras's last axis
        y = graph.add("Softmax", [x.name], name, axis=_axis(x, -1))
        return _Value(y, x.shape, x.channels_first)
    raise UnsupportedLayer(f"{name}: activation {getattr(function, '__name__', function)}")


def _clip(graph: _Graph, x: _Value, high: float, name: str) -> _Value:
    y = graph.add("Clip", [x.name, graph.scalar(0.0), graph.scalar(high)], name)
    return _Value(y, x.shape, x.channels_first)


def _conv(graph: _Graph, layer, x: _Value, shape: tuple, weight: np.ndarray, group: int):
    """A Conv with an OIHW ``weight``, then the layer's activation."""
    x = graph.nchw(x)
    inputs = [x.name, graph.weight(f"{layer.name}/kernel", weight)]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}/bias", _float32(layer.bias)))
    kernel = weight.shape[2:]
    y = graph.add(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=kernel,
        strides=layer.strides,
        dilations=layer.dilation_rate,
        group=group,
        pads=_pads(layer.padding, x.shape[1:3], kernel, layer.strides, layer.dilation_rate),
    )
    y = _Value(y, shape, channels_first=True, conv=graph.nodes[-1])
    return _activation(graph, layer.activation, y, f"{layer.name}/activation")


def _conv2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Keras's HWIO kernel (I = input channels / groups) as ONNX's OIHW."""
    [x] = inputs
    weight = _float32(layer.kernel).transpose(3, 2, 0, 1)
    return _conv(graph, layer, x, shape, weight, group=layer.groups)


def _depthwise_conv2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """A Conv with one group per input channel.

    Keras's kernel is (H, W, C, multiplier), output channel c * multiplier + m; ONNX's
    grouped weight is (C * multiplier, 1, H, W), output channels grouped in the same order.
    """
    [x] = inputs
    kernel = _float32(layer.kernel)
    height, width, channels, multiplier = kernel.shape
    weight = kernel.reshape(height, width, 1, channels * multiplier).transpose(3, 2, 0, 1)
    return _conv(graph, layer, x, shape, weight, group=channels)


def _batch_normalization(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Inference batch normalisation: x * scale + shift, per channel.

    scale = gamma / sqrt(moving_variance + epsilon), shift = beta - moving_mean * scale
    (gamma 1 without ``scale``, beta 0 without ``center``), computed in float64. Right after
    a Conv that nothing else reads, it folds into the Conv's weights and bias; elsewhere it is
    a Mul and an Add.
    """
    [x] = inputs
    scale = 1 / np.sqrt(_float32(layer.moving_variance).astype(np.float64) + layer.epsilon)
    if layer.scale:
        scale *= _float32(layer.gamma)
    shift = -_float32(layer.moving_mean) * scale
    if layer.center:
        shift += _float32(layer.beta)

    axis = layer.axis % len(shape)
    if x.conv is not None and axis == 3:
        _fold_into_conv(graph, x.conv, scale, shift)
        return x
    broadcast = (-1,) + (1,) * (len(shape) - 1 - _axis(x, axis))
    scale = graph.weight(f"{layer.name}/scale", scale.astype(np.float32).reshape(broadcast))
    shift = graph.weight(f"{layer.name}/shift", shift.astype(np.float32).reshape(broadcast))
    y = graph.add("Mul", [x.name, scale], f"{layer.name}/scaled")
    return _Value(graph.add("Add", [y, shift], layer.name), shape, x.channels_first)


def _fold_into_conv(graph: _Graph, conv: onnx.NodeProto, scale, shift) -> None:
    """conv(x, W, b) * scale + shift == conv(x, W * scale, b * scale + shift)."""
    weight = conv.input[1]
    graph.weights[weight] = (graph.weights[weight] * scale[:, None, None, None]).astype(np.float32)
    if len(conv.input) == 3:
        bias = conv.input[2]
        graph.weights[bias] = (graph.weights[bias] * scale + shift).astype(np.float32)
    else:
        conv.input.append(graph.weight(f"{conv.name}/bias", shift.astype(np.float32)))


def _activation_layer(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    [x] = inputs
    return _activation(graph, layer.activation, x, layer.name)


def _relu(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """``ReLU()``, or ``ReLU(6.0)`` as a Clip; leaky or thresholded ReLUs are unsupported."""
    [x] = inputs
    if layer.negative_slope or layer.threshold:
        raise UnsupportedLayer(f"{layer.name}: ReLU with a negative slope or a threshold")
    if layer.max_value is None:
        return _Value(graph.add("Relu", [x.name], layer.name), shape, x.channels_first)
    return _clip(graph, x, float(layer.max_value), layer.name)


def _dense(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """MatMul over the last axis (in Keras's layout), then Add the bias."""
    [x] = inputs
    x = graph.keras_layout(x)
    kernel = graph.weight(f"{layer.name}/kernel", _float32(layer.kernel))
    y = graph.add("MatMul", [x.name, kernel], layer.name)
    if layer.use_bias:
        bias = graph.weight(f"{layer.name}/bias", _float32(layer.bias))
        y = graph.add("Add", [y, bias], f"{layer.name}/bias_add")
    return _activation(graph, layer.activation, _Value(y, shape), f"{layer.name}/activation")


def _add(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    xs = _same_layout(graph, inputs)
    y = xs[0].name
    for x in xs[1:]:
        y = graph.add("Add", [y, x.name], layer.name)
    return _Value(y, shape, xs[0].channels_first)


def _concatenate(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    xs = _same_layout(graph, inputs)
    y = graph.add("Concat", [x.name for x in xs], layer.name, axis=_axis(xs[0], layer.axis))
    return _Value(y, shape, xs[0].channels_first)


def _pool(op: str, **attributes):
    def convert(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
        [x] = inputs
        x = graph.nchw(x)
        pads = _pads(layer.padding, x.shape[1:3], layer.pool_size, layer.strides, (1, 1))
        y = graph.add(
            op,
            [x.name],
            layer.name,
            kernel_shape=layer.pool_size,
            strides=layer.strides,
            pads=pads,
            **attributes,
        )
        return _Value(y, shape, channels_first=True)

    return convert


_max_pooling2d = _pool("MaxPool")
"""The padding never wins the max: TensorFlow and ONNX both ignore it."""
_average_pooling2d = _pool("AveragePool", count_include_pad=0)
"""TensorFlow averages over the pixels inside the image only: count_include_pad=0."""


def _global_average_pooling2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple):
    [x] = inputs
    y = graph.add("GlobalAveragePool", [graph.nchw(x).name], layer.name)  # N, C, 1, 1
    if layer.keepdims:
        return _Value(y, shape, channels_first=True)
    return _Value(graph.add("Flatten", [y], f"{layer.name}/flatten", axis=1), shape)


def _zero_padding2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    [x] = inputs
    x = graph.nchw(x)
    (top, bottom), (left, right) = layer.padding
    pads = graph.weight(
        f"{layer.name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
    )
    return _Value(graph.add("Pad", [x.name, pads], layer.name), shape, channels_first=True)


def _flatten(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Keras flattens in NHWC order: back to Keras's layout first."""
    [x] = inputs
    x = graph.keras_layout(x)
    return _Value(graph.add("Flatten", [x.name], layer.name, axis=1), shape)


def _reshape(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Reshapes in Keras's layout; 0 keeps the batch dimension, -1 for an unknown one."""
    [x] = inputs
    x = graph.keras_layout(x)
    target = np.array([0, *(-1 if d is None else d for d in shape[1:])], np.int64)
    y = graph.add("Reshape", [x.name, graph.weight(f"{layer.name}/shape", target)], layer.name)
    return _Value(y, shape)


def _identity(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Dropout: nothing at inference."""
    [x] = inputs
    return x


CONVERTERS = {
    keras.layers.Conv2D: _conv2d,
    keras.layers.DepthwiseConv2D: _depthwise_conv2d,
    keras.layers.BatchNormalization: _batch_normalization,
    keras.layers.Activation: _activation_layer,
    keras.layers.ReLU: _relu,
    keras.layers.Dense: _dense,
    keras.layers.Add: _add,
    keras.layers.Concatenate: _concatenate,
    keras.layers.MaxPooling2D: _max_pooling2d,
    keras.layers.AveragePooling2D: _average_pooling2d,
    keras.layers.GlobalAveragePooling2D: _global_average_pooling2d,
    keras.layers.ZeroPadding2D: _zero_padding2d,
    keras.layers.Flatten: _flatten,
    keras.layers.Reshape: _reshape,
    keras.layers.Dropout: _identity,
}
"""Keras layer class (exactly: a subclass may compute something else) -> converter."""
