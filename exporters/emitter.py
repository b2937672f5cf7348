"""Keras 3 functional model -> ONNX graph, emitted layer by layer, without TensorFlow tracing.

tf2onnx traces the model with TensorFlow and rewrites the TensorFlow graph: seconds per model,
and some graphs it cannot convert at all (ConvNeXt's exact GELU). Every layer that the 40
``keras.applications`` architectures use has a direct ONNX equivalent, so this module walks the
functional graph and emits ONNX nodes for each operation with ``onnx.helper``, taking the
weights from the layers as NumPy arrays: one small converter per layer type, in
``CONVERTERS``. A model with a layer (or setting) it does not know raises ``UnsupportedLayer``,
naming every such layer type, and ``keras_to_onnx`` falls back to tf2onnx.

What the graph walks: the nodes of a functional model (a ``Sequential`` is one too, through
the functional model Keras builds for it), each calling a layer, a nested model (walked in
turn), or one of Keras's operations (``x + 3.0``, ``inputs + branch``: ``keras.ops`` nodes
with constants among their arguments).

Layout: Keras image tensors are NHWC, ONNX convolutions and pools NCHW. The graph input stays
NHWC; one Transpose follows it and values stay NCHW from there ("channels first"), the kernels
transposed in NumPy. A value goes back to Keras's layout only where the layout shows: Flatten,
Reshape, Dense, LayerNormalization, the output.

Only ``keras_to_onnx`` imports this module, when a Keras model exists: importing Keras here
costs nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper

from zoo.sources import keras_file

MIN_OPSET = 13
"""Softmax over one axis (13), Pad, Clip and Slice with tensor inputs (11)."""
LAYER_NORMALIZATION_OPSET = 17
"""ONNX's LayerNormalization op; below it, the layer is emitted as its arithmetic."""
HARD_SWISH_OPSET = 14

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


class UnsupportedLayer(Exception):
    """The model has a layer, or a setting, that this emitter does not convert.

    ``layer_types``: the Keras class names responsible, every one in the model where known.
    """

    def __init__(self, message: str, layer_types: tuple[str, ...] = ()):
        super().__init__(message)
        self.layer_types = layer_types


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

    def __init__(self, reserved: tuple[str, ...], opset: int):
        self.nodes: list[onnx.NodeProto] = []
        self.weights: dict[str, np.ndarray] = {}
        self.opset = opset
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

    def constant(self, name: str, value, like: _Value) -> str:
        """``value`` (a number or an array that broadcasts against ``like`` in Keras's
        layout, NumPy's way) as a float32 initializer that broadcasts against ``like`` as
        the graph holds it."""
        array = np.asarray(value, np.float64)
        if array.ndim == 0:
            return self.scalar(float(array))
        if array.ndim > len(like.shape):
            raise UnsupportedLayer(f"{name}: a constant of rank {array.ndim} on {like.shape}")
        array = array.reshape((1,) * (len(like.shape) - array.ndim) + array.shape)
        if like.channels_first:
            array = array.transpose(TO_NCHW)
        return self.weight(name, array.astype(np.float32))

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
    model,
    opset: int,
    batch: int | None,
    input_name: str,
    output_name: str,
    input_shape: tuple | None = None,
) -> onnx.ModelProto:
    """``model`` as ONNX, for ``keras_to_onnx`` (which documents the interface).

    ``input_shape`` (without the batch) fills the dimensions the model leaves open
    (MobileNetV3 takes any image size) in the graph's declared input.

    Raises ``UnsupportedLayer`` for anything but a functional model made of the operations in
    ``CONVERTERS`` (and nested functional models), float32, channels last, each layer called
    on its input tensors only.
    """
    if opset < MIN_OPSET:
        raise UnsupportedLayer(f"opset {opset}: the direct emitter needs {MIN_OPSET} or newer")
    unknown = unsupported_layer_types(model)
    if unknown:
        raise UnsupportedLayer(f"{model.name}: no converter for {', '.join(unknown)}", unknown)

    graph = _Graph(reserved=(input_name, output_name), opset=opset)
    [image], [result] = model.inputs, model.outputs
    x = _Value(input_name, tuple(image.shape))
    if len(image.shape) == 4:
        x = graph.nchw(x)
    [y] = _emit_function(graph, model, [x])

    last = graph.keras_layout(y).name
    if last == input_name:  # the model computes nothing
        graph.nodes.append(helper.make_node("Identity", [input_name], [output_name]))
    else:  # the last value takes the output's name
        for node in graph.nodes:
            for names in (node.input, node.output):
                names[:] = [output_name if name == last else name for name in names]

    def tensor(name: str, shape: tuple) -> onnx.ValueInfoProto:
        dims = ["batch" if batch is None else batch, *shape[1:]]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    declared = tuple(image.shape)
    if input_shape is not None:
        given = zip(declared[1:], input_shape, strict=True)
        declared = (None, *(d if d is not None else g for d, g in given))

    opset_id = helper.make_opsetid("", opset)
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            model.name,
            [tensor(input_name, declared)],
            [tensor(output_name, result.shape)],
        ),
        opset_imports=[opset_id],
        ir_version=helper.find_min_ir_version_for([opset_id]),
    )
    for name in list(graph.weights):  # popped: each array is freed once its copy is in place
        _write_initializer(proto.graph.initializer.add(), name, graph.weights.pop(name))
    return proto


def unsupported_layer_types(model) -> tuple[str, ...]:
    """The class names of ``model``'s operations that no converter handles, nested models
    included, sorted; the model's own class name when it is not a functional model."""
    function = _functional(model)
    if function is None:
        return (type(model).__name__,)
    unknown = set()
    for node in _nodes(function):
        operation = node.operation
        if _functional(operation) is not None:
            unknown.update(unsupported_layer_types(operation))
        elif type(operation) not in CONVERTERS:
            unknown.add(type(operation).__name__)
    return tuple(sorted(unknown))


def _functional(model):
    """The functional model that computes ``model``: itself, a built ``Sequential``'s inner
    one, or ``None`` (a subclassed model, a layer)."""
    if isinstance(model, keras.Sequential):
        return model._functional
    return model if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth") else None


def _nodes(function) -> list:
    """The nodes that compute something, deepest first: a topological order, as in Keras's
    ``Function._run_through_graph``."""
    return [
        node
        for depth in sorted(function._nodes_by_depth, reverse=True)
        for node in function._nodes_by_depth[depth]
        if not node.is_input
    ]


def _emit_function(graph: _Graph, model, inputs: list[_Value]) -> list[_Value]:
    """Emit the nodes of functional ``model`` on ``inputs``; its outputs."""
    function = _functional(model)
    nodes = _nodes(function)
    readers = Counter(id(t) for node in nodes for t in node.input_tensors)
    readers.update(id(t) for t in function.outputs)
    if len(inputs) != len(function.inputs):
        raise UnsupportedLayer(f"{model.name}: called on {len(inputs)} tensors")
    values = {id(t): x for t, x in zip(function.inputs, inputs, strict=True)}
    for node in nodes:
        operation = node.operation
        # Keras records the defaults (mask=None, training=False); anything else changes the call.
        keywords = node.arguments.kwargs
        if type(operation) in INFERENCE_ONLY | TRAINING_BLIND:  # they record training=True
            keywords = {k: v for k, v in keywords.items() if k != "training"}
        given = [k for k, v in keywords.items() if v is not None and v is not False]
        if given or len(node.outputs) != 1:
            raise UnsupportedLayer(f"{operation.name}: called with {given}, or not one output")
        [output] = node.outputs
        arguments = [
            values[id(a)] if isinstance(a, keras.KerasTensor) else a
            for a in keras.tree.flatten(node.arguments.args)
        ]
        try:
            value = _emit_node(graph, operation, arguments, output)
        except UnsupportedLayer as error:
            if error.layer_types:
                raise
            raise UnsupportedLayer(str(error), (type(operation).__name__,)) from None
        if readers[id(output)] > 1:
            value = dataclasses.replace(value, conv=None)
        values[id(output)] = value
    return [values[id(t)] for t in function.outputs]


def _emit_node(graph: _Graph, operation, arguments: list, output) -> _Value:
    """One node: a nested model, walked, or a converter."""
    if getattr(output, "dtype", None) != "float32":
        raise UnsupportedLayer(f"{operation.name}: computes in {output.dtype}")
    if getattr(operation, "data_format", "channels_last") != "channels_last":
        raise UnsupportedLayer(f"{operation.name}: data_format {operation.data_format}")
    if getattr(operation, "quantization_mode", None):
        raise UnsupportedLayer(f"{operation.name}: quantized ({operation.quantization_mode})")
    if type(operation) not in TAKES_CONSTANTS and not all(isinstance(a, _Value) for a in arguments):
        raise UnsupportedLayer(f"{operation.name}: called with a constant argument")
    if _functional(operation) is not None:
        [value] = _emit_function(graph, operation, arguments)
        return value
    return CONVERTERS[type(operation)](graph, operation, arguments, tuple(output.shape))


def _write_initializer(tensor: onnx.TensorProto, name: str, array: np.ndarray) -> None:
    """``numpy_helper.from_array``, but written into its place in the model: handing a
    finished TensorProto to ``make_graph``, ``append`` or ``extend`` copies it, a second copy of
    the weights (0.5 GB for VGG16)."""
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def _axis(x: _Value, axis: int) -> int:
    """Keras's ``axis`` of ``x`` as an axis of the ONNX tensor that holds it."""
    axis %= len(x.shape)
    return TO_NCHW.index(axis) if x.channels_first else axis


def _float32(variable) -> np.ndarray:
    """A variable's value: one copy at most (``keras.ops.convert_to_numpy`` makes two), read
    from the backend tensor (``np.asarray(variable)`` trips NumPy 2's ``copy`` deprecation)."""
    return np.asarray(getattr(variable, "value", variable), dtype=np.float32)


def _same_layout(graph: _Graph, xs: list[_Value]) -> list[_Value]:
    """The inputs of a merge, all channels first if any is; all in Keras's layout if their
    ranks differ (NumPy's broadcasting then lines them up as in Keras)."""
    if len({len(x.shape) for x in xs}) > 1:
        return [graph.keras_layout(x) for x in xs]
    if any(x.channels_first for x in xs):
        return [graph.nchw(x) for x in xs]
    return xs


def _padding(padding: str, size: tuple, kernel: tuple, strides: tuple, dilations: tuple) -> dict:
    """The ONNX attributes for Keras's ``padding`` over the spatial ``size``: ``pads`` (begins,
    then ends), or ``auto_pad`` where the size is only known at run time.

    TensorFlow's "same" pads so that out = ceil(in / stride), splitting the padding evenly and
    putting an odd pixel at the end (bottom, right): ONNX's SAME_UPPER. Where the size is known
    the pads are written out rather than left to ``auto_pad``, which every runtime then reads
    alike.
    """
    padding = padding.lower()  # pooling layers keep it as given
    if padding == "valid":
        return {"pads": [0] * 2 * len(size)}
    if padding != "same":
        raise UnsupportedLayer(f"padding {padding!r}")
    if None in size:
        return {"auto_pad": "SAME_UPPER"}
    totals = [
        max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        for n, k, s, d in zip(size, kernel, strides, dilations, strict=True)
    ]
    return {"pads": [t // 2 for t in totals] + [t - t // 2 for t in totals]}


# Activations: Keras's activation function -> its ONNX nodes.


def _unary(op: str, **attributes):
    def emit(graph: _Graph, x: _Value, name: str) -> _Value:
        return _Value(graph.add(op, [x.name], name, **attributes), x.shape, x.channels_first)

    return emit


def _relu6(graph: _Graph, x: _Value, name: str) -> _Value:
    return _clip(graph, x, 6.0, name)


def _softmax(graph: _Graph, x: _Value, name: str) -> _Value:
    """Over Keras's last axis."""
    y = graph.add("Softmax", [x.name], name, axis=_axis(x, -1))
    return _Value(y, x.shape, x.channels_first)


def _silu(graph: _Graph, x: _Value, name: str) -> _Value:
    """x * sigmoid(x): the pair ONNX Runtime fuses."""
    gate = graph.add("Sigmoid", [x.name], f"{name}/sigmoid")
    return _Value(graph.add("Mul", [x.name, gate], name), x.shape, x.channels_first)


def _gelu(graph: _Graph, x: _Value, name: str) -> _Value:
    """Exact GELU, x * (1 + erf(x / sqrt(2))) / 2, in the node order ONNX Runtime fuses."""
    y = graph.add("Div", [x.name, graph.scalar(math.sqrt(2))], f"{name}/scaled")
    y = graph.add("Erf", [y], f"{name}/erf")
    y = graph.add("Add", [y, graph.scalar(1.0)], f"{name}/shifted")
    y = graph.add("Mul", [x.name, y], f"{name}/gated")
    return _Value(graph.add("Mul", [y, graph.scalar(0.5)], name), x.shape, x.channels_first)


_hard_sigmoid = _unary("HardSigmoid", alpha=1 / 6, beta=0.5)
"""Keras's hard_sigmoid, relu6(x + 3) / 6, is clip(x / 6 + 1 / 2, 0, 1)."""


def _hard_silu(graph: _Graph, x: _Value, name: str) -> _Value:
    """x * hard_sigmoid(x): ONNX's HardSwish (opset 14)."""
    if graph.opset >= HARD_SWISH_OPSET:
        return _unary("HardSwish")(graph, x, name)
    gate = _hard_sigmoid(graph, x, f"{name}/gate")
    return _Value(graph.add("Mul", [x.name, gate.name], name), x.shape, x.channels_first)


ACTIVATIONS = {
    keras.activations.relu: _unary("Relu"),
    keras.activations.relu6: _relu6,
    keras.activations.sigmoid: _unary("Sigmoid"),
    keras.activations.tanh: _unary("Tanh"),
    keras.activations.elu: _unary("Elu", alpha=1.0),
    keras.activations.selu: _unary("Selu", alpha=1.67326324, gamma=1.05070098),
    keras.activations.softplus: _unary("Softplus"),
    keras.activations.softmax: _softmax,
    keras.activations.silu: _silu,  # also "swish"
    keras.activations.gelu: _gelu,  # exact: the default, approximate=False
    keras.activations.hard_sigmoid: _hard_sigmoid,
    keras.activations.hard_silu: _hard_silu,  # also "hard_swish"
    keras.activations.leaky_relu: lambda graph, x, name: _leaky(graph, x, 0.2, name),
}
"""Keras activation function -> emitter; ``linear`` emits nothing."""


def _activation(graph: _Graph, function, x: _Value, name: str) -> _Value:
    """``function`` (one of Keras's activations) applied to ``x``.

    Read from the layer at conversion time: the exporter swaps the final softmax for linear.
    """
    if function is keras.activations.linear:
        return x
    if function not in ACTIVATIONS:
        raise UnsupportedLayer(f"{name}: activation {getattr(function, '__name__', function)}")
    return ACTIVATIONS[function](graph, x, name)


def _leaky(graph: _Graph, x: _Value, slope: float, name: str) -> _Value:
    y = graph.add("LeakyRelu", [x.name], name, alpha=float(slope))
    return _Value(y, x.shape, x.channels_first)


def _clip(graph: _Graph, x: _Value, high: float, name: str) -> _Value:
    y = graph.add("Clip", [x.name, graph.scalar(0.0), graph.scalar(high)], name)
    return _Value(y, x.shape, x.channels_first)


# Layer converters: (graph, layer, inputs, Keras's output shape) -> the output value.


def _conv_node(
    graph: _Graph, name: str, x: _Value, weight: np.ndarray, bias, layer, group: int, shape
) -> _Value:
    """A Conv with an OIHW ``weight`` and the strides, dilations and padding of ``layer``."""
    x = graph.nchw(x)
    inputs = [x.name, graph.weight(f"{name}/kernel", weight)]
    if bias is not None:
        inputs.append(graph.weight(f"{name}/bias", _float32(bias)))
    kernel = weight.shape[2:]
    y = graph.add(
        "Conv",
        inputs,
        name,
        kernel_shape=kernel,
        strides=layer.strides,
        dilations=layer.dilation_rate,
        group=group,
        **_padding(layer.padding, x.shape[1:3], kernel, layer.strides, layer.dilation_rate),
    )
    return _Value(y, shape, channels_first=True, conv=graph.nodes[-1])


def _depthwise_weight(kernel: np.ndarray) -> np.ndarray:
    """Keras's depthwise kernel (H, W, C, multiplier), output channel c * multiplier + m, as
    ONNX's grouped weight (C * multiplier, 1, H, W), output channels in the same order."""
    height, width, channels, multiplier = kernel.shape
    return kernel.reshape(height, width, 1, channels * multiplier).transpose(3, 2, 0, 1)


def _conv2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Keras's HWIO kernel (I = input channels / groups) as ONNX's OIHW."""
    [x] = inputs
    weight = _float32(layer.kernel).transpose(3, 2, 0, 1)
    bias = layer.bias if layer.use_bias else None
    y = _conv_node(graph, layer.name, x, weight, bias, layer, layer.groups, shape)
    return _activation(graph, layer.activation, y, f"{layer.name}/activation")


def _depthwise_conv2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """A Conv with one group per input channel."""
    [x] = inputs
    weight = _depthwise_weight(_float32(layer.kernel))
    bias = layer.bias if layer.use_bias else None
    y = _conv_node(graph, layer.name, x, weight, bias, layer, x.shape[-1], shape)
    return _activation(graph, layer.activation, y, f"{layer.name}/activation")


def _separable_conv2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """The depthwise Conv (strides, dilations, padding; no bias), then the 1x1 pointwise one
    (the bias), then the activation."""
    [x] = inputs
    depthwise = _depthwise_weight(_float32(layer.depthwise_kernel))
    middle = (*shape[:3], depthwise.shape[0])
    y = _conv_node(graph, f"{layer.name}/depthwise", x, depthwise, None, layer, x.shape[-1], middle)
    pointwise = _float32(layer.pointwise_kernel).transpose(3, 2, 0, 1)
    y = _conv_node(
        graph,
        layer.name,
        y,
        pointwise,
        layer.bias if layer.use_bias else None,
        _POINTWISE,
        1,
        shape,
    )
    return _activation(graph, layer.activation, y, f"{layer.name}/activation")


@dataclass(frozen=True)
class _Pointwise:
    strides: tuple = (1, 1)
    dilation_rate: tuple = (1, 1)
    padding: str = "valid"


_POINTWISE = _Pointwise()
"""The geometry of a separable convolution's 1x1 step."""


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
    broadcast = (-1,) + (1,) * (len(shape) - 1 - axis)  # in Keras's layout
    scale, shift = scale.reshape(broadcast), shift.reshape(broadcast)
    return _scale_and_shift(graph, layer.name, x, scale, shift)


def _scale_and_shift(graph: _Graph, name: str, x: _Value, scale, shift) -> _Value:
    """x * scale + shift, each a number or an array that broadcasts in Keras's layout; a
    multiplication by 1 or an addition of 0 is left out."""
    y = x.name
    if np.any(np.asarray(scale) != 1):
        y = graph.add("Mul", [y, graph.constant(f"{name}/scale", scale, x)], f"{name}/scaled")
    if np.any(np.asarray(shift) != 0):
        y = graph.add("Add", [y, graph.constant(f"{name}/shift", shift, x)], name)
    return _Value(y, x.shape, x.channels_first)


def _fold_into_conv(graph: _Graph, conv: onnx.NodeProto, scale, shift) -> None:
    """conv(x, W, b) * scale + shift == conv(x, W * scale, b * scale + shift)."""
    weight = conv.input[1]
    graph.weights[weight] = (graph.weights[weight] * scale[:, None, None, None]).astype(np.float32)
    if len(conv.input) == 3:
        bias = conv.input[2]
        graph.weights[bias] = (graph.weights[bias] * scale + shift).astype(np.float32)
    else:
        conv.input.append(graph.weight(f"{conv.name}/bias", shift.astype(np.float32)))


def _rescaling(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """x * scale + offset (each a number, or per channel)."""
    [x] = inputs
    return _scale_and_shift(graph, layer.name, x, layer.scale, layer.offset)


def _normalization(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """(x - mean) / max(sqrt(variance), epsilon), as Keras computes it, written as
    x * scale + shift with the layer's (adapted or given) mean and variance."""
    [x] = inputs
    if layer.invert:
        raise UnsupportedLayer(f"{layer.name}: Normalization(invert=True)")
    mean = keras.ops.convert_to_numpy(layer.mean).astype(np.float64)
    variance = keras.ops.convert_to_numpy(layer.variance).astype(np.float64)
    scale = 1 / np.maximum(np.sqrt(variance), keras.config.epsilon())
    return _scale_and_shift(graph, layer.name, x, scale, -mean * scale)


def _layer_normalization(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Normalisation over trailing axes in Keras's layout: ONNX's LayerNormalization (opset
    17), or below that its arithmetic."""
    [x] = inputs
    rank = len(shape)
    axes = sorted(a % rank for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis]))
    if layer.rms_scaling or axes != list(range(axes[0], rank)):
        raise UnsupportedLayer(
            f"{layer.name}: LayerNormalization over axes {layer.axis}, rms_scaling "
            f"{layer.rms_scaling}: only over the last axes, without rms_scaling",
            ("LayerNormalization",),
        )
    x = graph.keras_layout(x)
    normalized = shape[axes[0] :]
    gamma = _float32(layer.gamma) if layer.scale else np.ones(normalized, np.float32)
    beta = _float32(layer.beta) if layer.center else np.zeros(normalized, np.float32)
    gamma = graph.weight(f"{layer.name}/gamma", gamma.reshape(normalized))
    beta = graph.weight(f"{layer.name}/beta", beta.reshape(normalized))
    if graph.opset >= LAYER_NORMALIZATION_OPSET:
        inputs = [x.name, gamma, beta]
        y = graph.add("LayerNormalization", inputs, layer.name, axis=axes[0], epsilon=layer.epsilon)
        return _Value(y, shape)
    mean = graph.add("ReduceMean", [x.name], f"{layer.name}/mean", axes=axes)
    centred = graph.add("Sub", [x.name, mean], f"{layer.name}/centred")
    square = graph.add("Mul", [centred, centred], f"{layer.name}/square")
    variance = graph.add("ReduceMean", [square], f"{layer.name}/variance", axes=axes)
    variance = graph.add("Add", [variance, graph.scalar(layer.epsilon)], f"{layer.name}/eps")
    deviation = graph.add("Sqrt", [variance], f"{layer.name}/deviation")
    y = graph.add("Div", [centred, deviation], f"{layer.name}/normalized")
    y = graph.add("Mul", [y, gamma], f"{layer.name}/scaled")
    return _Value(graph.add("Add", [y, beta], layer.name), shape)


def _activation_layer(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    [x] = inputs
    return _activation(graph, layer.activation, x, layer.name)


def _relu(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """``ReLU()``, ``ReLU(6.0)`` as a Clip; leaky or thresholded ReLUs are unsupported."""
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


def _elementwise(op: str):
    """A merge layer (``Add()([a, b])``) or a Keras operation (``a + b``, ``x * 0.5``): ``op``
    over the operands in order, tensors and constants, broadcasting as NumPy does."""

    def convert(graph: _Graph, layer, inputs: list, shape: tuple) -> _Value:
        tensors = iter(_same_layout(graph, [x for x in inputs if isinstance(x, _Value)]))
        operands = [next(tensors) if isinstance(x, _Value) else x for x in inputs]
        like = max((x for x in operands if isinstance(x, _Value)), key=lambda x: len(x.shape))
        names = [
            x.name if isinstance(x, _Value) else graph.constant(f"{layer.name}/constant", x, like)
            for x in operands
        ]
        y = names[0]
        for name in names[1:]:
            y = graph.add(op, [y, name], layer.name)
        return _Value(y, shape, like.channels_first)

    return convert


def _average(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    total = _elementwise("Add")(graph, layer, inputs, shape)
    y = graph.add("Mul", [total.name, graph.scalar(1 / len(inputs))], f"{layer.name}/mean")
    return _Value(y, shape, total.channels_first)


def _concatenate(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    xs = _same_layout(graph, inputs)
    y = graph.add("Concat", [x.name for x in xs], layer.name, axis=_axis(xs[0], layer.axis))
    return _Value(y, shape, xs[0].channels_first)


def _pool(op: str, **attributes):
    def convert(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
        [x] = inputs
        x = graph.nchw(x)
        padding = _padding(layer.padding, x.shape[1:3], layer.pool_size, layer.strides, (1, 1))
        y = graph.add(
            op,
            [x.name],
            layer.name,
            kernel_shape=layer.pool_size,
            strides=layer.strides,
            **padding,
            **attributes,
        )
        return _Value(y, shape, channels_first=True)

    return convert


_max_pooling2d = _pool("MaxPool")
"""The padding never wins the max: TensorFlow and ONNX both ignore it."""
_average_pooling2d = _pool("AveragePool", count_include_pad=0)
"""TensorFlow averages over the pixels inside the image only: count_include_pad=0."""


def _global_pool(op: str):
    def convert(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
        [x] = inputs
        y = graph.add(op, [graph.nchw(x).name], layer.name)  # N, C, 1, 1
        if layer.keepdims:
            return _Value(y, shape, channels_first=True)
        return _Value(graph.add("Flatten", [y], f"{layer.name}/flatten", axis=1), shape)

    return convert


def _zero_padding2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    [x] = inputs
    x = graph.nchw(x)
    (top, bottom), (left, right) = layer.padding
    pads = graph.weight(
        f"{layer.name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
    )
    return _Value(graph.add("Pad", [x.name, pads], layer.name), shape, channels_first=True)


def _cropping2d(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """A Slice of the spatial axes; ends counted from the end, so any size works."""
    [x] = inputs
    x = graph.nchw(x)
    (top, bottom), (left, right) = layer.cropping
    end = np.iinfo(np.int64).max
    starts = graph.weight(f"{layer.name}/starts", np.array([top, left], np.int64))
    ends = graph.weight(f"{layer.name}/ends", np.array([-bottom or end, -right or end], np.int64))
    axes = graph.weight(f"{layer.name}/axes", np.array([2, 3], np.int64))
    y = graph.add("Slice", [x.name, starts, ends, axes], layer.name)
    return _Value(y, shape, channels_first=True)


def _flatten(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Keras flattens in NHWC order: back to Keras's layout first."""
    [x] = inputs
    x = graph.keras_layout(x)
    return _Value(graph.add("Flatten", [x.name], layer.name, axis=1), shape)


def _reshape(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Reshapes in Keras's layout; 0 keeps the batch dimension, -1 for an unknown one.

    (N, C) -> (N, 1, 1, C), as in a squeeze-excite block, is (N, C, 1, 1) channels first.
    """
    [x] = inputs
    if len(x.shape) == 2 and len(shape) == 4 and shape[1:3] == (1, 1):
        target = graph.weight(f"{layer.name}/shape", np.array([0, -1, 1, 1], np.int64))
        return _Value(graph.add("Reshape", [x.name, target], layer.name), shape, True)
    x = graph.keras_layout(x)
    target = np.array([0, *(-1 if d is None else d for d in shape[1:])], np.int64)
    y = graph.add("Reshape", [x.name, graph.weight(f"{layer.name}/shape", target)], layer.name)
    return _Value(y, shape)


def _resizing(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Keras's ``Resizing``: nothing at the size the image already has (a model that resizes
    its own input, fed at that size); else bilinear ``Resize`` as TensorFlow resizes, half-pixel
    centres and no antialiasing."""
    [x] = inputs
    if layer.crop_to_aspect_ratio or getattr(layer, "pad_to_aspect_ratio", False):
        raise UnsupportedLayer(f"{layer.name}: resizes to the aspect ratio by cropping or padding")
    if tuple(x.shape[1:3]) == (layer.height, layer.width):
        return x
    if layer.interpolation != "bilinear" or None in x.shape[1:3]:
        raise UnsupportedLayer(f"{layer.name}: {layer.interpolation} resizing of {x.shape}")
    x = graph.nchw(x)
    scales = np.array([1, 1, layer.height / x.shape[1], layer.width / x.shape[2]], np.float32)
    y = graph.add(
        "Resize",
        [x.name, "", graph.weight(f"{layer.name}/scales", scales)],
        layer.name,
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    return _Value(y, shape, channels_first=True)


def _identity(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """Augmentation, dropout, noise, stochastic depth: nothing at inference."""
    [x] = inputs
    return x


def _leaky_relu(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    [x] = inputs
    return _leaky(graph, x, layer.negative_slope, layer.name)


def _layer_scale(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """ConvNeXt's ``LayerScale``: x * gamma, per channel."""
    [x] = inputs
    return _scale_and_shift(graph, layer.name, x, _float32(layer.gamma), 0)


def _custom_scale(graph: _Graph, layer, inputs: list[_Value], shape: tuple) -> _Value:
    """InceptionResNetV2's ``CustomScaleLayer``: x + residual * scale, its ``scale`` a number."""
    x, residual = _same_layout(graph, inputs)
    residual = _scale_and_shift(graph, f"{layer.name}/residual", residual, layer.scale, 0)
    y = graph.add("Add", [x.name, residual.name], layer.name)
    return _Value(y, shape, x.channels_first)


CONVERTERS = {
    keras.layers.Conv2D: _conv2d,
    keras.layers.DepthwiseConv2D: _depthwise_conv2d,
    keras.layers.SeparableConv2D: _separable_conv2d,
    keras.layers.BatchNormalization: _batch_normalization,
    keras.layers.LayerNormalization: _layer_normalization,
    keras.layers.Rescaling: _rescaling,
    keras.layers.Normalization: _normalization,
    keras.layers.Activation: _activation_layer,
    keras.layers.ReLU: _relu,
    keras.layers.Dense: _dense,
    keras.layers.Add: _elementwise("Add"),
    keras.layers.Subtract: _elementwise("Sub"),
    keras.layers.Multiply: _elementwise("Mul"),
    keras.layers.Maximum: _elementwise("Max"),
    keras.layers.Minimum: _elementwise("Min"),
    keras.layers.Average: _average,
    keras.layers.Concatenate: _concatenate,
    keras.layers.MaxPooling2D: _max_pooling2d,
    keras.layers.AveragePooling2D: _average_pooling2d,
    keras.layers.GlobalAveragePooling2D: _global_pool("GlobalAveragePool"),
    keras.layers.GlobalMaxPooling2D: _global_pool("GlobalMaxPool"),
    keras.layers.ZeroPadding2D: _zero_padding2d,
    keras.layers.Cropping2D: _cropping2d,
    keras.layers.Flatten: _flatten,
    keras.layers.Reshape: _reshape,
    keras.layers.Resizing: _resizing,
    keras.layers.Identity: _identity,
    keras.layers.LeakyReLU: _leaky_relu,
}
"""Keras layer or operation class (exactly: a subclass may compute something else) ->
converter."""

OPERATIONS = {
    "Add": _elementwise("Add"),
    "Subtract": _elementwise("Sub"),
    "Multiply": _elementwise("Mul"),
    "Divide": _elementwise("Div"),
    "TrueDivide": _elementwise("Div"),
    "Maximum": _elementwise("Max"),
    "Minimum": _elementwise("Min"),
}
"""``keras.ops`` operations, by class name in ``keras.src.ops.numpy``, that a functional
model records for arithmetic on Keras tensors (``x + 3.0``, ``a * b``)."""

APPLICATION_LAYERS = {
    ("convnext", "LayerScale"): _layer_scale,
    ("convnext", "StochasticDepth"): _identity,
    ("inception_resnet_v2", "CustomScaleLayer"): _custom_scale,
}
"""The layers ``keras.applications`` defines for itself, by module and class: converted from
their attributes (``gamma``, ``scale``), as data."""


def _register_keras_internals() -> None:
    """Add the classes of ``OPERATIONS`` and ``APPLICATION_LAYERS``, which Keras keeps in
    private modules: one that moves or vanishes in some Keras release is left out (its models
    then fall back to tf2onnx, naming it), rather than breaking the import."""
    import importlib

    from keras.src.ops import numpy as operations

    for name, convert in OPERATIONS.items():
        if isinstance(getattr(operations, name, None), type):
            CONVERTERS[getattr(operations, name)] = convert
            TAKES_CONSTANTS.add(getattr(operations, name))
    for (module, name), convert in APPLICATION_LAYERS.items():
        try:
            cls = getattr(importlib.import_module(f"keras.src.applications.{module}"), name)
        except (ImportError, AttributeError):
            continue
        CONVERTERS[cls] = convert


INFERENCE_ONLY = {
    getattr(keras.layers, name)
    for name in keras_file.INFERENCE_ONLY
    if isinstance(getattr(keras.layers, name, None), type)
}
"""Augmentation and regularisation layers: their input, at inference (``training=False``,
which the export's verification runs Keras with)."""
CONVERTERS.update(dict.fromkeys(INFERENCE_ONLY, _identity))

TRAINING_BLIND = {keras.layers.Resizing, keras.layers.Rescaling, keras.layers.CenterCrop}
"""Preprocessing layers that compute the same in training, whose calls Keras may record with
``training=True`` (a ``Resizing`` in a nested ``Sequential``)."""

TAKES_CONSTANTS: set[type] = set()
"""The operations whose arguments may be constants besides tensors."""
_register_keras_internals()
