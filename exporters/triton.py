"""``zoo export MODEL --onnx --triton DIR``: the verified model as an entry of a Triton
Inference Server model repository, ready for ``tritonserver --model-repository DIR``::

    DIR/MODEL/config.pbtxt     platform onnxruntime_onnx, inputs and outputs, batching
    DIR/MODEL/labels.txt       one label per line, in class order
    DIR/MODEL/1/model.onnx     the export, with its verification report beside it

The configuration is read off the exported graph itself: the names, data types and dims of its
inputs and outputs. A dynamic batch dimension becomes Triton's batch dimension
(``max_batch_size`` 32, dynamic batching on). A fixed ``--batch N`` cannot take the batches of
1 to ``max_batch_size`` that Triton would form, so it gets ``max_batch_size: 0`` (no batching
by Triton) and dims that include N. The labels file is attached to the probabilities output:
Triton's classification extension then answers ``score:index:label``.

Everything is written into a temporary folder in ``DIR`` and renamed to ``DIR/MODEL`` at the
end (replacing an earlier export): a failure or an interruption leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from zoo.base.files import FolderKind, atomic_directory
from zoo.exporters.errors import ExportError
from zoo.exporters.results import OnnxExportResult
from zoo.exporters.verify_report import VerifyReport
from zoo.model.card import ModelCard

MAX_BATCH_SIZE = 32
"""The largest batch Triton forms for a model with a dynamic batch dimension."""
MAX_QUEUE_DELAY_MICROSECONDS = 1000
"""How long Triton's dynamic batcher may hold a request to fill a batch."""
VERSION = "1"
MODEL_FILE = "model.onnx"  # Triton's default_model_filename for onnxruntime_onnx
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.pbtxt"
TRITON_ENTRY = FolderKind("Triton model entry")
"""A model's folder in a Triton repository: an export replaces one it wrote, nothing else."""


def export_to_triton(
    name: str, repository: Path, export: Callable[[Path], OnnxExportResult]
) -> OnnxExportResult:
    """Lay out the model ``export(path)`` writes as ``repository/name``; returns its result
    with the final paths."""
    check_repository(repository)
    entry = repository / name
    final_model = entry / VERSION / MODEL_FILE
    with atomic_directory(entry, TRITON_ENTRY) as staging:
        (staging / VERSION).mkdir()
        result = export(staging / VERSION / MODEL_FILE)
        if result.report is not None:  # it names the file where it will be, not the staging
            result.report.onnx = str(final_model)
            VerifyReport.of(
                result.card.model, final_model, result.report, result.agreement, result.conversion
            ).write(result.report_path)
        labels = "".join(f"{label}\n" for _, label in result.card.input.labels)
        (staging / LABELS_FILE).write_text(labels)
        (staging / CONFIG_FILE).write_text(model_config(name, result.path, result.card))
    report_path = final_model.parent / result.report_path.name if result.report_path else None
    return dataclasses.replace(result, path=final_model, report_path=report_path, triton=entry)


def check_repository(folder: Path) -> None:
    """One clear line now, rather than a failure after minutes of work."""
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder (the Triton model repository)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{folder}: folder is not writable")


def model_config(name: str, path: Path, card: ModelCard) -> str:
    """Triton's ``config.pbtxt`` (protobuf text format) for the ONNX file at ``path``."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    batched = not batch_dim.HasField("dim_value")  # a named (dynamic) batch dimension
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {MAX_BATCH_SIZE if batched else 0}",
        "input [",
        ",\n".join(_tensor(value, batched) for value in graph.input),
        "]",
        "output [",
        ",\n".join(
            _tensor(value, batched, LABELS_FILE if value.name == card.probabilities_name else None)
            for value in graph.output
        ),
        "]",
    ]
    if batched:
        lines += [
            "dynamic_batching {",
            f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_MICROSECONDS}",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _tensor(value, batched: bool, label_file: str | None = None) -> str:
    """One input or output: name, data type and dims (less the batch when Triton batches)."""
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    fields = [
        f'name: "{value.name}"',
        f"data_type: {_triton_type(tensor.elem_type, value.name)}",
        f"dims: [ {', '.join(map(str, dims[1:] if batched else dims))} ]",
    ]
    if label_file:
        fields.append(f'label_filename: "{label_file}"')
    return "  {\n" + "".join(f"    {field}\n" for field in fields) + "  }"


def _triton_type(elem_type: int, name: str) -> str:
    """ONNX's tensor type as Triton's ``DataType`` (``FLOAT`` -> ``TYPE_FP32``)."""
    from onnx import TensorProto

    onnx_name = TensorProto.DataType.Name(elem_type)
    if onnx_name not in _TRITON_TYPES:
        raise ExportError(f"{name}: ONNX type {onnx_name} has no Triton equivalent")
    return f"TYPE_{_TRITON_TYPES[onnx_name]}"


_SAME_NAME = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
_TRITON_TYPES = {
    "FLOAT": "FP32",
    "FLOAT16": "FP16",
    "DOUBLE": "FP64",
    "BFLOAT16": "BF16",
    "STRING": "STRING",
    **{name: name for name in _SAME_NAME},
}
"""ONNX ``TensorProto.DataType`` names -> Triton ``DataType`` names, less ``TYPE_``."""
