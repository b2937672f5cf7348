"""Lower-precision variants of an exported float32 model: int8 (static, QDQ) and fp16.

int8 is ONNX Runtime's static quantization: weights per output channel (int8, symmetric),
activations per tensor (uint8), ranges calibrated by running the float model on real images fed
exactly as at inference. The QDQ format (QuantizeLinear/DequantizeLinear pairs around float
ops) is the one every execution provider reads; ONNX Runtime's CPU provider fuses the pairs into
integer kernels, VNNI ones where the CPU has them. The final Softmax stays in float: it is cheap,
and quantizing probabilities would round every small one to the same value.

fp16 stores weights and computes in float16, with the input and outputs left in float32 so that
clients do not change. It is meant for GPUs: ONNX Runtime's CPU provider has few float16
kernels and runs such a model slower than the float32 one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from zoo.artifact import METADATA_KEY, ModelCard

PRECISIONS = ("fp32", "fp16", "int8")


def quantize_int8(source: Path, destination: Path, calibration: Iterable[dict]) -> None:
    """Write an int8 QDQ copy of the float32 model ``source``, calibrated on ``calibration``
    (ONNX Runtime input feeds, one batch each)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Feeds(CalibrationDataReader):
        def __init__(self, feeds: Iterator[dict]):
            self.feeds = feeds

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    softmax = [node.name for node in onnx.load(source).graph.node if node.op_type == "Softmax"]
    # Beside the source: the export's hidden scratch folder, not the user's.
    with tempfile.TemporaryDirectory(dir=Path(source).parent) as folder:
        # Shape inference and graph fusions first, as ONNX Runtime recommends before
        # quantizing; symbolic shape inference (sympy) is not needed: every shape is static
        # but the batch.
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            destination,
            Feeds(iter(calibration)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=softmax,
            calibrate_method=CalibrationMethod.MinMax,
        )


def convert_fp16(source: Path, destination: Path) -> None:
    """Write a float16 copy of the float32 model ``source``, its input and outputs float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx.load(source), keep_io_types=True)
    destination.write_bytes(converted.SerializeToString())


def lower_precision(
    source: Path, destination: Path, card: ModelCard, calibration: Iterable[dict]
) -> None:
    """Write ``card.precision``'s variant of the float32 model ``source``, with ``card`` as its
    metadata (``calibration``: int8's input feeds)."""
    import onnx
    from onnx import helper

    if card.precision == "int8":
        quantize_int8(source, destination, calibration)
    else:
        convert_fp16(source, destination)
    proto = onnx.load(destination)
    del proto.metadata_props[:]  # the quantizer's bookkeeping, and the float32 card
    helper.set_model_props(proto, {METADATA_KEY: card.to_json()})
    destination.write_bytes(proto.SerializeToString())
