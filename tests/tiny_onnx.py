"""A zoo-format .onnx file small enough to build in milliseconds, without TensorFlow: a 4x4
input, the mean colour, a 3x3 matrix, a softmax; its model card can be edited on the way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from zoo.base.version import __version__
from zoo.model.card import METADATA_KEY, ModelCard
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec

LABELS = (("c0", "red"), ("c1", "green"), ("c2", "blue"))
SIZE = (4, 4)


def write_tiny_onnx(
    path: Path, edit_card: Callable[[dict], None] | None = None, matrix: np.ndarray | None = None
) -> Path:
    """The tiny model at ``path``; ``edit_card`` may change its card (a JSON document) first,
    and ``matrix`` replace its 3x3 matrix (NaN makes a model whose scores are NaN)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    card = ModelCard(
        model="tiny",
        input=InputConfig(SIZE, PreprocessSpec("tiny", divisor=255.0), LABELS),
        weights="none",
        weights_sha256=None,
        zoo_version=__version__,
        opset=17,
        logits_name=None,
    )
    document = json.loads(card.to_json())
    if edit_card:
        edit_card(document)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", *SIZE, 3])
    probabilities = helper.make_tensor_value_info(
        "probabilities", TensorProto.FLOAT, ["batch", len(LABELS)]
    )
    matrix = np.eye(3, dtype=np.float32) * 10 if matrix is None else matrix.astype(np.float32)
    weights = numpy_helper.from_array(matrix, "weights")
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["colour"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["colour", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [probabilities], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: json.dumps(document)})
    onnx.save(model, path)
    return path
