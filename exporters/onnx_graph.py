"""Keras 3 model -> ONNX graph, without holding the weights as TensorFlow constants.

The stock exports (Keras's ``model.export(format="onnx")``, ``tf2onnx.convert.from_keras``)
freeze the model: every weight becomes a TensorFlow graph constant that TensorFlow and tf2onnx
then copy and fold several times, and VGG16 (553 MB of weights) runs out of memory at 24 GiB.
Here the weights are *arguments* of the traced function, so TensorFlow and tf2onnx only ever see
their shapes; their values go into the ONNX graph afterwards, once each, as initializers.

That is the general path. Models made of the layers of the built-in ones are emitted directly,
layer by layer, with no tracing and no tf2onnx (``keras_graph``): seconds faster.

TensorFlow, tf2onnx, onnx and Keras are imported inside the functions: importing this module
is cheap.
"""

from __future__ import annotations

import inspect
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np


def keras_to_onnx(
    model,
    opset: int = 17,
    batch: int | None = None,
    input_name: str = "image",
    output_name: str = "probabilities",
    input_shape: tuple[int, ...] | None = None,
    check: bool = True,
):
    """Convert a built single-input, single-output Keras 3 model to an ``onnx.ModelProto``.

    ``input_shape`` (without the batch) is only needed for a subclassed model, which has no
    functional input to read it from. ``check`` runs ``onnx.checker`` on the result: a caller
    that loads the graph into ONNX Runtime next (which validates it as thoroughly) can skip it
    (0.4 s for ResNet50, 2 s for VGG16).

    The graph has one input, ``input_name``: float32 in the model's layout (NHWC for the Keras
    image classifiers), batch dimension ``batch``, or the symbolic ``"batch"`` when ``None``.
    Its one output, ``output_name``, is the model's output with the same batch dimension. The
    weights are initializers, with the arithmetic TensorFlow does on them at run time (kernel
    transposes, batch-normalisation scale and offset) already computed.

    Functional models made of the layers that ``keras_graph`` knows (those of the built-in
    models) are emitted by it directly, without tracing (ResNet50: 0.3 s rather than 6 s); any
    other model goes through TensorFlow and tf2onnx.
    """
    from .keras_graph import UnsupportedLayer, keras_graph_to_onnx

    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if inputs is None:  # a subclassed model
        if input_shape is None:
            raise ValueError(f"{model.name} is a subclassed model: give its input_shape")
    elif len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"{model.name} has {len(inputs)} inputs and {len(outputs)} outputs; "
            "only single-input, single-output models convert"
        )
    else:
        input_shape = tuple(inputs[0].shape[1:])
    try:
        proto = keras_graph_to_onnx(model, opset, batch, input_name, output_name)
    except UnsupportedLayer:
        proto = _convert_with_tf2onnx(model, opset, batch, input_name, output_name, input_shape)
    if check:
        _check(proto)
    return proto


def _convert_with_tf2onnx(
    model, opset: int, batch: int | None, input_name: str, output_name: str, input_shape: tuple
):
    """``keras_to_onnx`` for any model, through a traced ``tf.function`` and tf2onnx."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    trainable, non_trainable = model.trainable_variables, model.non_trainable_variables
    variables = trainable + non_trainable
    weights = dict(zip(_unique_names([v.path for v in variables]), variables, strict=True))
    signature = [tf.TensorSpec((batch, *input_shape), tf.float32, name=input_name)]
    signature += [tf.TensorSpec(v.shape, v.dtype, name=name) for name, v in weights.items()]

    # Keras's __call__ drops arguments call() does not take; stateless_call passes them on.
    parameters = inspect.signature(model.call).parameters
    takes_training = "training" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    options = {"training": False} if takes_training else {}

    @tf.function
    def forward(image, *values):
        split = len(trainable)
        outputs, _ = model.stateless_call(
            list(values[:split]), list(values[split:]), image, **options
        )
        return {output_name: outputs}  # tf2onnx names outputs after the returned dict's keys

    # tf2onnx names the inputs after the TensorSpec names, in every node that reads them.
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=opset)
    graph = proto.graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    constants.update((name, v.numpy()) for name, v in weights.items())
    _fold_constants(graph, constants, opset)

    for value in [value for value in graph.input if value.name != input_name]:
        graph.input.remove(value)  # the weights are initializers now
    for value in (graph.input[0], graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        if batch is None:
            dim.dim_param = "batch"
        else:
            dim.dim_value = batch
    return proto


def _unique_names(paths: list[str]) -> list[str]:
    """Variable paths (``conv1_conv/kernel``) as graph names, suffixed where two collide."""
    counts = Counter(paths)
    return [p if counts[p] == 1 else f"{p}_{i}" for i, p in enumerate(paths)]


def _fold_constants(graph, constants: dict[str, np.ndarray], opset: int) -> None:
    """Evaluate every node whose inputs are all constants, and store what the graph still reads.

    tf2onnx sees the weights as graph inputs, so it leaves what TensorFlow computes from them at
    run time in the graph: HWIO -> OIHW kernel transposes, depthwise kernel reshapes, the
    batch-normalisation ``gamma / sqrt(variance + eps)`` chain. ONNX Runtime would fold these
    when it creates a session; folding them here gives every runtime a clean graph and a
    faster session start. A node whose result is larger than its largest input (a broadcast)
    stays, so the file never grows. ``constants`` maps names to values; the graph ends with
    exactly the initializers its nodes read, and ``constants`` without them.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    remaining = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        if node.domain in ("", "ai.onnx") and node.input and set(node.input) <= constants.keys():
            inputs = {name: constants[name] for name in node.input}
            outputs = ReferenceEvaluator(node, opsets={"": opset}).run(None, inputs)
            if sum(o.size for o in outputs) <= max(i.size for i in inputs.values()):
                constants.update(zip(node.output, outputs, strict=True))
                continue
        remaining.append(node)
    read = {name for node in remaining for name in node.input}
    del graph.node[:]
    graph.node.extend(remaining)
    del graph.initializer[:]
    graph.initializer.extend(  # popped: each array is freed once its initializer holds a copy
        numpy_helper.from_array(constants.pop(name), name)
        for name in list(constants)
        if name in read
    )


def _check(proto) -> None:
    """``onnx.checker.check_model``, through a file when the model is over protobuf's 2 GiB."""
    import onnx

    if proto.ByteSize() <= onnx.checker.MAXIMUM_PROTOBUF:
        onnx.checker.check_model(proto)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "model.onnx")
        onnx.save(proto, path, save_as_external_data=True)  # moves the weights out of proto ...
        onnx.checker.check_model(path)
        onnx.load_external_data_for_model(proto, folder)  # ... and back in
