"""Graph transforms that make an exported model callable without zoo: ``--embed-preprocessing``
and ``--top-k``.

``embed_preprocessing`` puts the model's preprocessing in front of the graph, so that it takes
raw uint8 RGB pixels: any client that can decode and resize an image can call it, in any
language. A grayscale model's graph then takes RGB too, and makes it grayscale first. The
nodes do ``zoo.runtime.preprocessing.preprocess``'s float32 operations in its order
(channel flip, divide, subtract the mean, divide by the std; the flip is done on the uint8
pixels, which changes no value), so the graph sees the very values the host-side path would
feed it. ``add_top_k`` adds ONNX ``TopK`` outputs on the probabilities.

Both edit an ``onnx.ModelProto`` in place; onnx is imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from zoo.model.card import TopKOutputs
from zoo.model.spec import PreprocessSpec
from zoo.runtime.preprocessing import LUMA_WEIGHTS

PREFIX = "zoo_preprocess"
"""Names of the tensors added in front of the graph, apart from the model's own."""


def embed_preprocessing(proto, spec: PreprocessSpec, input_name: str) -> None:
    """Make the graph input ``input_name`` take uint8 pixels, preprocessed as ``spec`` says.

    The input keeps its name and shape; what the graph read from it, it now reads from the
    preprocessed tensor. The channel axis is the last one (NHWC, as the Keras models are).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    [image] = [value for value in graph.input if value.name == input_name]
    channel_axis = len(image.type.tensor_type.shape.dim) - 1
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    nodes = []

    def step(op: str, source: str, output: str, operand: np.ndarray | None = None, **attributes):
        inputs = [source]
        if operand is not None:
            inputs.append(f"{PREFIX}/{output}_operand")
            graph.initializer.append(numpy_helper.from_array(operand, inputs[-1]))
        nodes.append(helper.make_node(op, inputs, [f"{PREFIX}/{output}"], **attributes))
        return f"{PREFIX}/{output}"

    x = input_name
    if spec.channel_order == "BGR":
        # On the uint8 pixels, with Split and Concat: ONNX Runtime runs a Gather on the
        # channel axis several times slower (caffe's whole preprocessing of a 32x224x224
        # batch, on 2 cores: 13 ms this way, 25 to 95 ms with a Gather).
        rgb = [f"{PREFIX}/{channel}" for channel in "rgb"]
        equal_parts = {"num_outputs": 3} if opset >= 18 else {}  # required from opset 18
        nodes.append(helper.make_node("Split", [x], rgb, axis=channel_axis, **equal_parts))
        nodes.append(helper.make_node("Concat", rgb[::-1], [f"{PREFIX}/bgr"], axis=channel_axis))
        x = f"{PREFIX}/bgr"
    x = step("Cast", x, "float", to=TensorProto.FLOAT)
    if spec.channel_order == "L":
        x = _luma(step, x)
        image.type.tensor_type.shape.dim[channel_axis].dim_value = 3  # it takes RGB photos
    if spec.divisor != 1:
        x = step("Div", x, "divided", np.array(spec.divisor, np.float32))
    if any(spec.mean):
        x = step("Sub", x, "centred", np.array(spec.mean, np.float32))
    if any(s != 1 for s in spec.std):
        x = step("Div", x, "scaled", np.array(spec.std, np.float32))

    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == input_name:
                node.input[i] = x
    model_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + model_nodes)  # topologically sorted: the new nodes come first
    image.type.tensor_type.elem_type = TensorProto.UINT8


def _luma(step, x: str) -> str:
    """RGB -> grayscale as ``zoo.runtime.preprocessing.luma`` (Pillow's ``convert("L")``) does,
    exactly: the fixed-point weighted sum, rounded, is below 2**24, so float32 holds it whole,
    and dividing by 2**16 then flooring is the shift."""
    weights = np.array(LUMA_WEIGHTS, np.float32).reshape(3, 1)
    x = step("MatMul", x, "luma_sum", weights)
    x = step("Add", x, "luma_rounded", np.array(1 << 15, np.float32))
    x = step("Div", x, "luma_shifted", np.array(1 << 16, np.float32))
    return step("Floor", x, "luma")


def add_top_k(proto, probabilities: str, top_k: TopKOutputs) -> None:
    """Add ``top_k.scores_name, top_k.indices_name = TopK(probabilities, k)`` as graph outputs:
    the k largest probabilities per row, in descending order (ties: the lower index first)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    [output] = [value for value in graph.output if value.name == probabilities]
    k = f"{top_k.scores_name}/k"
    graph.initializer.append(numpy_helper.from_array(np.array([top_k.k], np.int64), k))
    graph.node.append(
        helper.make_node(
            "TopK",
            [probabilities, k],
            [top_k.scores_name, top_k.indices_name],
            name=top_k.scores_name,
            axis=-1,
        )
    )
    batch = output.type.tensor_type.shape.dim[0]
    shape = [batch.dim_param or batch.dim_value or None, top_k.k]
    scores_type = output.type.tensor_type.elem_type  # the probabilities' own
    graph.output.extend(
        [
            helper.make_tensor_value_info(top_k.scores_name, scores_type, shape),
            helper.make_tensor_value_info(top_k.indices_name, TensorProto.INT64, shape),
        ]
    )
