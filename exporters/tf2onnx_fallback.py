"""The general Keras -> ONNX path: a traced ``tf.function`` converted by tf2onnx.

Used for layers the direct emitter (``emitter``) does not know, such as a plugin's own. The
weights are *arguments* of the traced function, so TensorFlow and tf2onnx only ever see their
shapes; their values go into the ONNX graph afterwards, once each, as initializers.

TensorFlow, tf2onnx and onnx are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections import Counter

import numpy as np


class UnsupportedOps(Exception):
    """tf2onnx left TensorFlow ops it cannot convert in the graph (``ops``, sorted)."""

    def __init__(self, ops: tuple[str, ...]):
        super().__init__(f"tf2onnx does not support the TensorFlow ops {', '.join(ops)}")
        self.ops = ops


def convert_with_tf2onnx(
    model, opset: int, batch: int | None, input_name: str, output_name: str, input_shape: tuple
):
    """``keras_to_onnx`` for any model, through a traced ``tf.function`` and tf2onnx.

    Raises ``UnsupportedOps`` when tf2onnx leaves ops no ONNX opset defines in the graph (it
    only logs them), before anything reads the graph.
    """
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
    with _tf2onnx_errors_only():
        proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=opset)
    unknown = _unknown_ops(proto.graph)
    if unknown:
        raise UnsupportedOps(unknown)
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


@contextlib.contextmanager
def _tf2onnx_errors_only():
    """tf2onnx logs its progress at INFO (dozens of lines per model) and what it cannot convert
    at ERROR, which ``_unknown_ops`` reports in one line instead: nothing gets through."""
    logger = logging.getLogger("tf2onnx")
    level, logger.level = logger.level, logging.CRITICAL
    try:
        yield
    finally:
        logger.setLevel(level)


def _unknown_ops(graph) -> tuple[str, ...]:
    """The op types in ``graph`` (and its subgraphs) that no ONNX opset in its domain defines:
    the TensorFlow ops tf2onnx left unconverted."""
    import onnx

    unknown = set()
    for node in graph.node:
        if not onnx.defs.has(node.op_type, node.domain):
            unknown.add(node.op_type)
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs]:
                unknown.update(_unknown_ops(subgraph))
    return tuple(sorted(unknown))


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
