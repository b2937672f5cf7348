"""Keras 3 model -> ONNX graph: the direct emitter where it knows every layer, else tf2onnx.

The stock exports (Keras's ``model.export(format="onnx")``, ``tf2onnx.convert.from_keras``)
freeze the model: every weight becomes a TensorFlow graph constant that TensorFlow and tf2onnx
then copy and fold several times, and VGG16 (553 MB of weights) runs out of memory at 24 GiB.
Neither path here does: the direct emitter (``emitter``) writes each layer's ONNX nodes with
its weights as initializers, no tracing; the fallback (``tf2onnx_fallback``) traces with the
weights as arguments, so TensorFlow only sees their shapes.

TensorFlow, tf2onnx, onnx and Keras are imported inside the functions: importing this module
is cheap.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.exporters import tf2onnx_fallback
from zoo.exporters.errors import ConversionError

EMITTER = "emitter"
"""``Conversion.converter`` for zoo's direct emitter (``emitter``)."""
TF2ONNX = "tf2onnx"
"""``Conversion.converter`` for the fallback through TensorFlow and tf2onnx."""


@dataclass(frozen=True)
class Conversion:
    """What ``keras_to_onnx`` made, and how."""

    proto: Any
    """The ``onnx.ModelProto``."""
    converter: str
    """``EMITTER`` or ``TF2ONNX``."""
    unsupported_layers: tuple[str, ...] = ()
    """On a fallback, the Keras layer types the emitter does not convert, which forced it."""


def keras_to_onnx(
    model,
    opset: int = 17,
    batch: int | None = None,
    input_name: str = "image",
    output_name: str = "probabilities",
    input_shape: tuple[int, ...] | None = None,
    check: bool = True,
) -> Conversion:
    """Convert a built single-input, single-output Keras 3 model to an ``onnx.ModelProto``,
    returned in a ``Conversion`` that says which converter made it.

    ``input_shape`` (without the batch) is needed for a subclassed model, which has no
    functional input to read it from; for a functional model it fills the dimensions the model
    leaves open (MobileNetV3 takes any image size), which the graph's input then declares.
    ``check`` runs ``onnx.checker`` on the result: a caller that loads the graph into ONNX
    Runtime next (which validates it as thoroughly) can skip it (0.4 s for ResNet50, 2 s for
    VGG16); a graph from the tf2onnx fallback is checked always.

    The graph has one input, ``input_name``: float32 in the model's layout (NHWC for the Keras
    image classifiers), batch dimension ``batch``, or the symbolic ``"batch"`` when ``None``.
    Its one output, ``output_name``, is the model's output with the same batch dimension. The
    weights are initializers, with the arithmetic TensorFlow does on them at run time (kernel
    transposes, batch-normalisation scale and offset) already computed.

    Functional models made of the layers that ``emitter`` knows (every layer of the
    ``keras.applications`` architectures) are emitted by it directly, without tracing (ResNet50:
    0.3 s rather than 6 s); any other model goes through TensorFlow and tf2onnx, and a graph
    tf2onnx cannot convert completely raises ``ConversionError`` naming the TensorFlow ops and
    the Keras layers that forced the fallback.
    """
    from zoo.exporters.emitter import UnsupportedLayer, emit_onnx

    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if inputs is None:  # a subclassed model
        if input_shape is None:
            raise ValueError(f"{model.name} is a subclassed model: give its input_shape")
    elif len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"{model.name} has {len(inputs)} inputs and {len(outputs)} outputs; "
            "only single-input, single-output models convert"
        )
    else:  # the model's own, its open dimensions (any image size) filled from input_shape
        given = input_shape or (None,) * (len(inputs[0].shape) - 1)
        input_shape = tuple(
            d if d is not None else g for d, g in zip(inputs[0].shape[1:], given, strict=True)
        )
    try:
        proto = emit_onnx(model, opset, batch, input_name, output_name, input_shape)
        conversion = Conversion(proto, EMITTER)
    except UnsupportedLayer as unsupported:
        layers = unsupported.layer_types or (type(model).__name__,)
        try:
            proto = tf2onnx_fallback.convert_with_tf2onnx(
                model, opset, batch, input_name, output_name, input_shape
            )
        except tf2onnx_fallback.UnsupportedOps as error:
            raise ConversionError(
                f"cannot convert {model.name} to ONNX: tf2onnx, the fallback for the layers "
                f"zoo's emitter does not convert ({', '.join(layers)}), does not support the "
                f"TensorFlow ops {', '.join(error.ops)}"
            ) from None
        conversion = Conversion(proto, TF2ONNX, layers)
        check = True
    if check:
        try:
            _check(conversion.proto)
        except Exception as error:  # onnx.checker's errors share no base class
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConversionError(
                f"the ONNX graph of {model.name} ({conversion.converter}) is invalid: {first_line}"
            ) from None
    return conversion


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


def converter_facts(conversion: Conversion | None) -> dict | None:
    if conversion is None:
        return None
    return {
        "name": conversion.converter,
        "unsupported_layers": list(conversion.unsupported_layers),
    }
