"""``zoo export --layout nchw``: the graph's image input made NCHW (channels first), as
TensorRT, DeepStream's ``nvinfer``, OpenCV DNN and most C++ pipelines feed images.

The converted graph takes NHWC (Keras's layout) and its first node is a Transpose to NCHW for
the convolutions. Rather than change each converter, the finished graph gets a new NCHW input
under the same name, and one Transpose back to NHWC in front of what the NHWC input fed (the
embedded preprocessing too, when there is some: it then runs on the same values as before).
ONNX Runtime and OpenVINO fold that Transpose into the converter's own, so the NCHW graph runs
the same kernels. The card says ``NCHW``, and every zoo command feeds such a file by
transposing its NHWC pixels (``OnnxRunner.feed``).
"""

from __future__ import annotations

LAYOUTS = ("nhwc", "nchw")
TO_NHWC = (0, 2, 3, 1)


def input_as_nchw(proto, input_name: str) -> None:
    """Make ``proto``'s NHWC input ``input_name`` an NCHW input of the same name, in place."""
    from onnx import helper

    [graph_input] = [value for value in proto.graph.input if value.name == input_name]
    nhwc_name = f"{input_name}/nhwc"
    for node in proto.graph.node:
        node.input[:] = [nhwc_name if name == input_name else name for name in node.input]
    shape = graph_input.type.tensor_type.shape
    batch, height, width, channels = (_copy(dim) for dim in shape.dim)
    del shape.dim[:]
    shape.dim.extend([batch, channels, height, width])
    transpose = helper.make_node(
        "Transpose", [input_name], [nhwc_name], name=f"{input_name}/to_nhwc", perm=TO_NHWC
    )
    proto.graph.node.insert(0, transpose)


def _copy(message):
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
