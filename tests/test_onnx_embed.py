"""``zoo export --embed-preprocessing`` and ``--top-k``: self-contained ONNX files that take raw
uint8 pixels, and the card, loader and verifier that go with them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.exporters.keras_outputs import load_photos
from zoo.model.card import METADATA_KEY, ModelCard, TopKOutputs
from zoo.model.spec import ExportOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.preprocessing import preprocess
from zoo.runtime.samples import sample_images

from .conftest import CARD, input_config, run_zoo

CAFFE = get_registry().preprocessors["caffe"]
TORCH = get_registry().preprocessors["torch"]


def test_an_embedding_card_round_trips_and_says_format_2():
    card = dataclasses.replace(CARD, input_dtype="uint8", top_k=TopKOutputs(2))
    assert ModelCard.from_json(card.to_json()) == card
    assert json.loads(card.to_json())["format_version"] == 2
    assert card.host_input.preprocess.to_dict() == {
        "name": "raw",
        "channel_order": "RGB",
        "divisor": 1.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
    }


def test_a_plain_card_stays_readable_by_version_1_readers():
    document = json.loads(CARD.to_json())
    assert document["format_version"] == 1 and CARD.host_input == CARD.input
    del document["outputs"]["top_k"]  # as version 1 wrote it
    assert ModelCard.from_json(json.dumps(document)) == CARD


def _graph(path: Path, shape: tuple[int, ...], spec, top_k: int | None = None, opset=17) -> Path:
    """A zoo-like graph without TensorFlow: ``image`` (float32) -> ``out`` (the input itself)
    and ``probabilities`` (the softmax of the flattened input), then embedded."""
    import onnx
    from onnx import TensorProto, helper

    from zoo.exporters.embed import add_top_k, embed_preprocessing

    flat = int(np.prod(shape[1:]))
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["image"], ["out"]),
            helper.make_node("Flatten", ["image"], ["flat"]),
            helper.make_node("Softmax", ["flat"], ["probabilities"], axis=-1),
        ],
        "pixels",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", *shape[1:]])],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", *shape[1:]]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", flat]),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    embed_preprocessing(proto, spec, "image")
    if top_k:
        add_top_k(proto, "probabilities", TopKOutputs(top_k))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize(
    "spec, opset",
    [(CAFFE, 13), (CAFFE, 18), (TORCH, 17), (get_registry().preprocessors["tf"], 17)],
)
def test_the_embedded_preprocessing_is_bitwise_the_host_side_one(tmp_path, spec, opset):
    import onnxruntime

    pixels = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    path = _graph(tmp_path / "g.onnx", pixels.shape, spec, opset=opset)
    session = onnxruntime.InferenceSession(str(path))
    assert session.get_inputs()[0].name == "image" and session.get_inputs()[0].type == (
        "tensor(uint8)"
    )
    [inside] = session.run(["out"], {"image": pixels})
    np.testing.assert_array_equal(inside, preprocess(pixels, spec))


def test_the_top_k_outputs_are_numpys_top_k(tmp_path):
    import onnxruntime

    pixels = np.random.default_rng(1).integers(0, 256, (4, 2, 3, 3), dtype=np.uint8)
    path = _graph(tmp_path / "g.onnx", pixels.shape, TORCH, top_k=5)
    session = onnxruntime.InferenceSession(str(path))
    probabilities, scores, indices = session.run(
        ["probabilities", "top_k_scores", "top_k_indices"], {"image": pixels}
    )
    expected = np.argsort(-probabilities, axis=-1, kind="stable")[:, :5]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(scores, np.take_along_axis(probabilities, expected, axis=-1))
    assert [o.shape for o in session.get_outputs()][-2:] == [["batch", 5], ["batch", 5]]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """MobileNet, random init, exported plain and embedded (with top-5), each verified."""
    from zoo.exporters.onnx import export_onnx

    folder = tmp_path_factory.mktemp("embed")
    spec = get_registry().model("mobilenet")
    plain = export_onnx(spec, folder / "plain.onnx", ExportOptions(weights="none"))
    embedded = export_onnx(
        spec,
        folder / "embedded.onnx",
        ExportOptions(weights="none", embed_preprocessing=True, top_k=5),
    )
    assert plain.report.passed and embedded.report.passed
    return {"plain": plain.path, "embedded": embedded.path}


@pytest.mark.slow
def test_the_embedded_graph_takes_uint8_under_the_same_name(exports):
    import onnx

    proto = onnx.load(str(exports["embedded"]))
    [image] = proto.graph.input
    assert image.name == "image" and image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [224, 224, 3]
    assert [o.name for o in proto.graph.output] == [
        "logits",
        "probabilities",
        "top_k_scores",
        "top_k_indices",
    ]
    card = ModelCard.from_json({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert card.input_dtype == "uint8" and card.top_k == TopKOutputs(5)
    assert card.input.preprocess == get_registry().preprocessors["tf"]  # what the nodes do


@pytest.mark.slow
def test_embedded_and_plain_agree_on_the_same_pixels(exports):
    pixels = load_photos(sample_images(), input_config((224, 224)))
    plain = zoo.load(exports["plain"], provider="cpu")
    embedded = zoo.load(exports["embedded"], provider="cpu")
    assert embedded.preprocessing.name == "raw"  # the host leaves the pixels alone
    _, plain_logits = plain.runner.outputs(preprocess(pixels, plain.preprocessing))
    _, embedded_logits = embedded.runner.outputs(pixels)  # raw uint8 straight in
    np.testing.assert_array_equal(embedded_logits, plain_logits)
    np.testing.assert_array_equal(embedded.probabilities(pixels), plain.probabilities(pixels))


@pytest.mark.slow
def test_the_mobilenet_top_k_outputs_are_the_largest_probabilities(exports):
    pixels = load_photos(sample_images(), input_config((224, 224)))
    runner = zoo.load(exports["embedded"], provider="cpu").runner
    probabilities, scores, indices = runner.run(
        ["probabilities", "top_k_scores", "top_k_indices"], pixels
    )
    np.testing.assert_array_equal(scores, -np.sort(-probabilities, axis=-1)[:, :5])
    np.testing.assert_array_equal(np.take_along_axis(probabilities, indices, axis=-1), scores)


@pytest.mark.slow
def test_predict_on_an_embedded_file_through_the_cli_and_the_api(exports, photo):
    result = run_zoo("predict", str(exports["embedded"]), str(photo), "--json", "--provider", "cpu")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    plain_top = zoo.load(exports["plain"], provider="cpu").predict(photo)
    api_top = zoo.load(exports["embedded"], provider="cpu").predict(photo)
    assert [p["index"] for p in record["top"]] == [p.index for p in plain_top]
    assert [(p.index, p.score) for p in api_top] == [(p.index, p.score) for p in plain_top]


@pytest.mark.slow
def test_verify_passes_on_the_embedded_export(exports):
    result = run_zoo("verify", "mobilenet", str(exports["embedded"]), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True


@pytest.mark.slow
def test_verify_fails_on_a_wrong_embedded_mean(exports, tmp_path):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(exports["embedded"]))
    [mean] = [t for t in proto.graph.initializer if t.name == "zoo_preprocess/centred_operand"]
    assert numpy_helper.to_array(mean).tolist() == [1.0, 1.0, 1.0]  # tf: x / 127.5 - 1
    mean.CopyFrom(numpy_helper.from_array(np.array([0.9, 1.0, 1.0], np.float32), mean.name))
    wrong = tmp_path / "wrong-mean.onnx"
    onnx.save(proto, str(wrong))

    result = run_zoo("verify", "mobilenet", str(wrong))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: mobilenet: ONNX Runtime disagrees with Keras on "), line


@pytest.mark.slow
def test_verify_fails_when_the_top_k_outputs_lie(exports, tmp_path):
    import onnx

    proto = onnx.load(str(exports["embedded"]))
    [top_k] = [node for node in proto.graph.node if node.op_type == "TopK"]
    top_k.input[0] = "logits"  # the right ranking, the wrong scores
    wrong = tmp_path / "wrong-top-k.onnx"
    onnx.save(proto, str(wrong))

    result = run_zoo("verify", "mobilenet", str(wrong))
    assert result.returncode == 1
    assert result.stderr == (
        "zoo: mobilenet: the top-5 scores are not the 5 largest probabilities in order\n"
    )


@pytest.mark.slow
def test_a_top_k_beyond_the_classes_is_one_line_before_any_work(tmp_path):
    result = run_zoo("export", "mobilenet", "--top-k", "1001", "-o", str(tmp_path / "m.onnx"))
    assert result.returncode == 1
    assert result.stderr == "zoo: --top-k must be between 1 and 1000 (the classes), not 1001\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.real_weights
def test_the_embedded_model_fed_raw_pixels_ranks_like_keras(
    mobilenet_weights, shared_images, tmp_path
):
    """The issue's check, with plain ONNX Runtime as a client would call it: no zoo on the
    ONNX side, only the uint8 pixels of each photo at 224x224."""
    import onnxruntime

    from zoo.runtime.images import load_image

    destination = tmp_path / "mobilenet.onnx"
    exported = run_zoo(
        "export",
        "mobilenet",
        "--weights",
        str(mobilenet_weights),
        "--embed-preprocessing",
        "--top-k",
        "5",
        "--images",
        str(shared_images[0].parent),
        "-o",
        str(destination),
        "--json",
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["verified"] is True  # the shared photos included

    keras = zoo.load("mobilenet", weights=mobilenet_weights)
    session = onnxruntime.InferenceSession(str(destination), providers=["CPUExecutionProvider"])
    for image in shared_images:
        pixels = load_image(image, input_config((224, 224)))[np.newaxis]
        assert pixels.dtype == np.uint8
        scores, indices = session.run(["top_k_scores", "top_k_indices"], {"image": pixels})
        keras_top = keras.predict(image)
        assert indices[0].tolist() == [p.index for p in keras_top], image.name
        np.testing.assert_allclose(scores[0], [p.score for p in keras_top], atol=1e-5)
