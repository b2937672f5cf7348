"""``zoo export --triton DIR``: a Triton model repository entry, its ``config.pbtxt``
checked with Triton's own protobuf schema (shipped by ``tritonclient``) against the graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.base.files import MARKER
from zoo.exporters.triton import TRITON_ENTRY
from zoo.model.labels import imagenet_labels

from .conftest import run_zoo


def _export(*options: str):
    return run_zoo("export", "mobilenet", "--weights", "none", *options)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("triton")
    result = _export("--embed-preprocessing", "--top-k", "3", "--triton", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["triton"] == str(folder / "mobilenet") and record["verified"] is True
    assert record["onnx"] == str(folder / "mobilenet" / "1" / "model.onnx")
    return folder


def _config(entry: Path):
    """config.pbtxt parsed into Triton's ``ModelConfig`` message: unknown fields, wrong types
    or enum values are parse errors."""
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    return text_format.Parse((entry / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _graph_tensors(values) -> list[tuple[str, str, list[int]]]:
    """(name, Triton data type, full dims with -1 for a named dim) of graph inputs/outputs."""
    import onnx

    triton_type = {
        onnx.TensorProto.FLOAT: "TYPE_FP32",
        onnx.TensorProto.UINT8: "TYPE_UINT8",
        onnx.TensorProto.INT64: "TYPE_INT64",
    }
    return [
        (
            value.name,
            triton_type[value.type.tensor_type.elem_type],
            [
                d.dim_value if d.HasField("dim_value") else -1
                for d in value.type.tensor_type.shape.dim
            ],
        )
        for value in values
    ]


def _config_tensors(tensors, model_config_pb2) -> list[tuple[str, str, list[int]]]:
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors]


@pytest.mark.slow
def test_the_layout_is_a_triton_model_repository(repository):
    entry = repository / "mobilenet"
    assert sorted(str(p.relative_to(repository)) for p in repository.rglob("*")) == [
        "mobilenet",
        "mobilenet/.zoo-folder.json",
        "mobilenet/1",
        "mobilenet/1/model.onnx",
        "mobilenet/1/model.verify.json",
        "mobilenet/config.pbtxt",
        "mobilenet/labels.txt",
    ]
    labels = (entry / "labels.txt").read_text().splitlines()
    assert labels == [label for _, label in imagenet_labels()]
    report = json.loads((entry / "1" / "model.verify.json").read_text())
    assert report["passed"] and report["onnx"] == str(entry / "1" / "model.onnx")


@pytest.mark.slow
def test_the_config_matches_the_graph(repository):
    import onnx

    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    entry = repository / "mobilenet"
    config = _config(entry)
    graph = onnx.load(str(entry / "1" / "model.onnx")).graph
    assert config.name == "mobilenet" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 32 and config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    # Triton batches along the graph's dynamic first dimension: the config's dims omit it.
    unbatched = [(n, t, dims[1:]) for n, t, dims in _graph_tensors(graph.input)]
    assert _config_tensors(config.input, model_config_pb2) == unbatched
    assert unbatched == [("image", "TYPE_UINT8", [224, 224, 3])]
    unbatched = [(n, t, dims[1:]) for n, t, dims in _graph_tensors(graph.output)]
    assert _config_tensors(config.output, model_config_pb2) == unbatched
    assert [o.name for o in config.output] == [
        "logits",
        "probabilities",
        "top_k_scores",
        "top_k_indices",
    ]
    labelled = {o.name: o.label_filename for o in config.output if o.label_filename}
    assert labelled == {"probabilities": "labels.txt"}


@pytest.mark.slow
def test_a_fixed_batch_is_not_batched_by_triton(tmp_path):
    import onnx

    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    result = _export("--batch-dim", "4", "--no-verify", "--triton", str(tmp_path))
    assert result.returncode == 0, result.stderr
    entry = tmp_path / "mobilenet"
    config = _config(entry)
    graph = onnx.load(str(entry / "1" / "model.onnx")).graph
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert _config_tensors(config.input, model_config_pb2) == _graph_tensors(graph.input)
    assert _config_tensors(config.input, model_config_pb2) == [
        ("image", "TYPE_FP32", [4, 224, 224, 3])
    ]
    assert _config_tensors(config.output, model_config_pb2) == _graph_tensors(graph.output)


@pytest.mark.slow
def test_a_failed_export_leaves_the_repository_as_it_was(repository, tmp_path):
    entry = repository / "mobilenet"
    before = {p: p.read_bytes() for p in entry.rglob("*") if p.is_file()}
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    result = _export("--triton", str(repository), "--images", str(photos))
    assert result.returncode == 1
    assert result.stderr.startswith(f"zoo: {photos / 'broken.jpg'}: ")
    assert [p.name for p in repository.iterdir()] == ["mobilenet"]  # no staging folder left
    assert {p: p.read_bytes() for p in entry.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_an_export_replaces_an_earlier_entry(tmp_path):
    """One zoo wrote (its marker says so); a folder of the user's is refused
    (tests/test_folders.py)."""
    stale = tmp_path / "mobilenet" / "2"
    stale.mkdir(parents=True)
    (tmp_path / "mobilenet" / MARKER).write_text(json.dumps({"kind": TRITON_ENTRY.name}))
    result = _export("--no-verify", "--triton", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and (tmp_path / "mobilenet" / "1" / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["mobilenet"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, message",
    [
        (["--triton", "{missing}"], "zoo: {missing}: no such folder (the Triton model repository)"),
        (["--triton", "{tmp}", "-o", "{tmp}/m.onnx"], "zoo: give -o or --triton, not both"),
    ],
)
def test_a_bad_repository_is_one_line(tmp_path, options, message):
    fill = {"missing": tmp_path / "missing", "tmp": tmp_path}
    result = _export(*[option.format(**fill) for option in options])
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(message.format(**fill))
    assert list(tmp_path.iterdir()) == []
