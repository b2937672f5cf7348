"""Lower-precision variants of an exported float32 model: int8 (static, QDQ) and fp16.

int8 is ONNX Runtime's static quantization: weights per output channel (int8, symmetric),
activations per tensor (uint8), ranges calibrated by running the float model on real images fed
exactly as at inference. The QDQ format (QuantizeLinear/DequantizeLinear pairs around float
ops) is the one every execution provider reads; ONNX Runtime's CPU provider fuses the pairs into
integer kernels. The final Softmax stays in float: it is cheap, and quantizing probabilities
would round every small one to the same value.

Which integer kernel runs depends on the CPU, and so does the result. With u8 activations and
s8 weights, x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply with ``VPMADDUBSW``,
which adds each pair of u8 x s8 products into a saturating int16: 255 x 127 x 2 = 64770 does not fit
in 32767, and a saturated sum is a wrong number. VNNI (``VPDPBUSD``), AMX and Arm's dot-product
instructions accumulate in int32 and never saturate. So the default, ``int8``, stores 7-bit
weights (``reduce_range``): 255 x 64 x 2 = 32640 fits, every CPU computes the same integers, and the
accuracy measured on the exporting machine holds on the others (docs/int8-cpus.md has the
measurements). ``int8-vnni`` keeps full 8-bit weights: slightly closer to float32 where VNNI,
AMX or Arm runs it, wrong on AVX2-only servers; its name says where it belongs.

fp16 stores weights and computes in float16, with the input and outputs left in float32 so that
clients do not change. It is meant for GPUs: ONNX Runtime's CPU provider has few float16
kernels and runs such a model slower than the float32 one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zoo.model.card import METADATA_KEY, ModelCard


@dataclass(frozen=True)
class Int8Recipe:
    """How ``quantize_static`` makes an int8 model; each field is one measured choice."""

    reduce_range: bool = True
    """7-bit weights: no int16 saturation on x86 CPUs without VNNI."""
    weight_type: str = "int8"
    """int8, or uint8 (U8U8: no saturation either, but a slower kernel on x86)."""
    per_channel: bool = True
    quant_format: str = "qdq"
    """qdq, or qoperator (QLinearConv and friends: CPU provider only)."""
    calibration_method: str = "minmax"
    """minmax, entropy or percentile."""
    float_layers: tuple[str, ...] = ()
    """Layers left in float: "first" and/or "last" (the first and last Conv, Gemm or MatMul)."""


INT8_RECIPES = {
    "int8": Int8Recipe(),
    "int8-vnni": Int8Recipe(reduce_range=False),
}
"""The int8 precisions ``zoo export --precision`` offers, by name."""
PRECISIONS = ("fp32", "fp16", *INT8_RECIPES)


def is_int8(precision: str) -> bool:
    return precision in INT8_RECIPES


def quantize_int8(
    source: Path, destination: Path, calibration: Iterable[dict], recipe: Int8Recipe = Int8Recipe()
) -> None:
    """Write an int8 copy of the float32 model ``source`` made by ``recipe``, calibrated on
    ``calibration`` (ONNX Runtime input feeds, one batch each)."""
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

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
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
            quant_format=QuantFormat.QDQ if recipe.quant_format == "qdq" else QuantFormat.QOperator,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8 if recipe.weight_type == "int8" else QuantType.QUInt8,
            nodes_to_exclude=_float_nodes(onnx.load(prepared), recipe.float_layers),
            calibrate_method=methods[recipe.calibration_method],
        )


def _float_nodes(model, float_layers: tuple[str, ...]) -> list[str]:
    """The nodes to leave in float: every Softmax, and the first/last layer when asked."""
    nodes = model.graph.node
    keep = [node.name for node in nodes if node.op_type == "Softmax"]
    layers = [node.name for node in nodes if node.op_type in ("Conv", "Gemm", "MatMul")]
    if "first" in float_layers:
        keep.append(layers[0])
    if "last" in float_layers:
        keep.append(layers[-1])
    return keep


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

    if is_int8(card.precision):
        quantize_int8(source, destination, calibration, INT8_RECIPES[card.precision])
    else:
        convert_fp16(source, destination)
    proto = onnx.load(destination)
    del proto.metadata_props[:]  # the quantizer's bookkeeping, and the float32 card
    helper.set_model_props(proto, {METADATA_KEY: card.to_json()})
    destination.write_bytes(proto.SerializeToString())
