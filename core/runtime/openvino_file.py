"""Running a zoo-exported .onnx file on OpenVINO's own runtime (the ``openvino`` package, never
the ``onnxruntime-openvino`` build, which replaces ONNX Runtime's module).

OpenVINO's CPU plugin computes in bf16 by default on CPUs that have it (AVX512-BF16, AMX),
silently. zoo sets the precision explicitly (``INFERENCE_PRECISION_HINT``): f32 unless bf16 or
f16 is asked for, and those only where the CPU computes them natively (OpenVINO's
``OPTIMIZATION_CAPABILITIES``): elsewhere OpenVINO would emulate them, slower than f32, or
fall back to f32 without a word. The precision the compiled model runs at is read back from
it, never assumed, and is what the loaded ``Model`` and every report state.
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple

import numpy as np

from zoo.base.errors import BackendUnavailable, describe_exception
from zoo.base.hardware import cpu_name
from zoo.model.card import ModelCard
from zoo.runtime.cpu_check import warn_if_verified_elsewhere
from zoo.runtime.model import Model
from zoo.runtime.onnx_file import ORT_TYPES, ModelFileError, OnnxRunner, card_mismatch
from zoo.runtime.onnx_metadata import file_card

PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
"""zoo's names of the precisions OpenVINO computes in -> OpenVINO's element type names."""
CAPABILITIES = {"FP32": "fp32", "BF16": "bf16", "FP16": "fp16"}
"""OpenVINO's ``OPTIMIZATION_CAPABILITIES`` -> zoo's precision names."""
_TYPES = {"f32": ORT_TYPES["float32"], "u8": ORT_TYPES["uint8"]}
"""OpenVINO's element types -> the names ``card_mismatch`` compares (ONNX Runtime's)."""

Port = namedtuple("Port", "name type shape")
"""A graph input or output as ``card_mismatch`` reads it."""


class OpenVinoRunner(OnnxRunner):
    """An OpenVINO compiled model with a zoo model card: fed, and its outputs named, as an
    ONNX Runtime session is (``OnnxRunner``). One infer request per thread: a request runs
    one inference at a time, and a server runs several batches at once."""

    def __init__(self, compiled, card: ModelCard, precision: str, version: str):
        self.compiled = compiled
        self.card = card
        self.precision = precision
        """What it computes in, as the compiled model reports it (zoo's name: fp32, bf16...)."""
        self.runtime = f"OpenVINO {version}"
        self._requests = threading.local()

    def run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        results = request.infer(self.feed(batch))
        return [np.asarray(results[self.compiled.output(name)]) for name in names]


def import_openvino():
    try:
        import openvino
    except ImportError as error:
        raise BackendUnavailable(
            f"OpenVINO is not installed ({error}); pip install 'zoo[openvino]'"
        ) from None
    return openvino


def openvino_version() -> str:
    from importlib import metadata

    return metadata.version("openvino")


def native_precisions(core) -> frozenset[str]:
    """The precisions this CPU computes natively, as OpenVINO's CPU plugin reports them: bf16
    on AVX512-BF16 and AMX CPUs, fp16 on AVX512-FP16/AMX-FP16 and Arm."""
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return frozenset(CAPABILITIES[name] for name in capabilities if name in CAPABILITIES)


def load_openvino(path: str | os.PathLike, precision: str | None = None, threads: int = 0) -> Model:
    """A zoo-exported .onnx file on OpenVINO's CPU plugin, computing in ``precision`` (None:
    fp32 for a float32 file, a lower-precision file's own); any problem is one line."""
    openvino = import_openvino()
    card = file_card(path)
    wanted = _precision_for(card, precision, path)
    core = openvino.Core()
    if wanted not in native_precisions(core):
        raise BackendUnavailable(
            f"this CPU ({cpu_name()}) does not compute {wanted} natively (OpenVINO's "
            f"capabilities here: {', '.join(sorted(native_precisions(core)))}); "
            "zoo does not run an emulated or silently float32 copy: use --precision fp32"
        )
    try:
        graph = core.read_model(str(path))
    except Exception as error:  # OpenVINO raises RuntimeError and its own types
        message = describe_exception(error)
        raise ModelFileError(f"{path}: not a model OpenVINO can load ({message})") from None
    problem = card_mismatch(card, _ports(graph.inputs), _ports(graph.outputs))
    if problem:
        raise ModelFileError(f"{path}: its zoo model card does not match its graph: {problem}")
    config = {"INFERENCE_PRECISION_HINT": PRECISIONS[wanted], "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        compiled = core.compile_model(graph, "CPU", config)
    except Exception as error:  # an operator its CPU plugin lacks, for one
        message = describe_exception(error).splitlines()[0]
        raise ModelFileError(f"{path}: OpenVINO cannot compile it ({message})") from None
    ran = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if ran != PRECISIONS[wanted]:
        raise BackendUnavailable(f"OpenVINO compiled {path} in {ran}, not the {wanted} asked for")
    warn_if_verified_elsewhere(card, path)
    actual = card.precision if card.precision != "fp32" else wanted
    runner = OpenVinoRunner(compiled, card, actual, openvino_version())
    return Model(card.model, card.host_input, runner, "openvino", str(path), actual, card)


def _precision_for(card: ModelCard, precision: str | None, path) -> str:
    """The float precision to ask OpenVINO for: ``precision``, one OpenVINO has a name for; a
    lower-precision file (int8, fp16) runs as it was made."""
    if precision is None or precision in ("fp32", card.precision):
        return "fp32"
    if precision not in PRECISIONS:
        raise BackendUnavailable(
            f"OpenVINO computes in {', '.join(PRECISIONS)}, not {precision!r} "
            "(an int8 model is a file: zoo export MODEL --precision int8)"
        )
    if card.precision != "fp32":
        raise BackendUnavailable(
            f"{path} is an {card.precision} file; --precision {precision} needs fp32"
        )
    return precision


def _ports(ports) -> list[Port]:
    """OpenVINO's inputs or outputs, once for each of their names."""
    return [
        Port(
            name,
            _TYPES.get(port.get_element_type().get_type_name(), str(port.get_element_type())),
            [dim.get_length() if dim.is_static else None for dim in port.get_partial_shape()],
        )
        for port in ports
        for name in port.get_names()
    ]
