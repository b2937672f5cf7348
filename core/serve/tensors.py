"""The Open Inference Protocol's infer request and response bodies, with the binary tensor data
extension: parsing what a client sent into images, and writing the scores back.

A request carries one input: ``image_bytes`` (BYTES, one encoded image per element) or
``image`` (UINT8 ``[N, height, width, 3]``). Its data comes either in the JSON (``data``, flat
or nested; a BYTES element in JSON is the image in base64, JSON strings being text) or after
the JSON, as the binary extension has it: ``Inference-Header-Content-Length`` gives the JSON's
length, ``parameters.binary_data_size`` each binary input's, in the order of the inputs, and a
BYTES element there is a 4-byte little-endian length and its bytes. Every way these can
disagree (a header length or a size that overruns the body, bytes left over, a count that is
not the shape's) is a ``RequestError``, found before anything is decoded.

The one output is ``probabilities`` (FP32 ``[N, classes]``); asked with the classification
extension's ``{"classification": K}`` parameter, it is the top K of each image instead, BYTES
``[N, K]`` of ``"score:index:label"``, as Triton answers. An output comes back in binary when
the request asks (``binary_data`` on it, or ``binary_data_output`` on the request).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zoo.base import jsonio
from zoo.base.jsonio import flatten
from zoo.model.labels import Prediction
from zoo.serve.errors import PayloadTooLarge, RequestError
from zoo.serve.inputs import CONTENT_LENGTH_DIGITS, EncodedImage, decimal

BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "image"
OUTPUT = "probabilities"
HEADER_LENGTH = "Inference-Header-Content-Length"
LENGTH_PREFIX = struct.Struct("<I")


@dataclass(frozen=True)
class RequestedOutput:
    binary: bool
    classification: int = 0
    """How many classes to answer per image (their labels as BYTES); 0: the scores."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    images: list[EncodedImage] | np.ndarray
    """Encoded images, or (N, height, width, 3) uint8 pixels."""
    output: RequestedOutput


def parse_request(
    body: bytes,
    header_length: str | None,
    size: tuple[int, int],
    max_images: int,
    channels: int = 3,
) -> InferRequest:
    """The request in ``body``; ``size`` is the model's (height, width), ``max_images`` the
    most images one request may carry (beyond: 413), ``channels`` the model's (1: a grayscale
    model, which takes UINT8 ``[N, h, w, 1]`` pixels as well as RGB)."""
    document, binary = _split(body, header_length)
    inputs = _field(document, "inputs", list, "the request")
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(
            f"send one input: {BYTES_INPUT!r} (BYTES, encoded images) or {PIXELS_INPUT!r} "
            f"(UINT8 [N, {size[0]}, {size[1]}, 3])"
        )
    tensor = inputs[0]
    name = _field(tensor, "name", str, "the input")
    datatype = _field(tensor, "datatype", str, f"input {name!r}")
    shape = _shape(_field(tensor, "shape", list, f"input {name!r}"), name)
    wanted = {BYTES_INPUT: "BYTES", PIXELS_INPUT: "UINT8"}
    if name not in wanted:
        raise RequestError(f"unknown input {name!r}; send {BYTES_INPUT!r} or {PIXELS_INPUT!r}")
    if datatype != wanted[name]:
        raise RequestError(f"input {name!r} is {wanted[name]}, not {datatype!r}")
    count = shape[0] if shape else 0
    accepted = [[size[0], size[1], c] for c in sorted({3, channels})]
    if name == PIXELS_INPUT and shape[1:] not in accepted:
        raise RequestError(
            f"input {name!r} must have shape [N, {size[0]}, {size[1]}, {channels}], not {shape}"
        )
    if name == BYTES_INPUT and (not shape or math.prod(shape[1:]) != 1):
        raise RequestError(f"input {name!r} must have shape [N] (or [N, 1]), not {shape}")
    if count < 1:
        raise RequestError(f"input {name!r} has no images (shape {shape})")
    if count > max_images:
        raise PayloadTooLarge(f"{count} images in one request; at most {max_images} (--max-queue)")
    data = _binary_data(tensor, name, binary)
    if name == BYTES_INPUT:
        images = _encoded_images(tensor, data, count)
    else:  # grayscale as RGB of three equal channels, which zoo's luma maps back exactly
        images = _pixels(tensor, data, shape)
        images = np.repeat(images, 3, axis=-1) if shape[-1] == 1 else images
    request_id = document.get("id")
    return InferRequest(
        request_id if isinstance(request_id, str) else None,
        images,
        _requested_output(document),
    )


def _split(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The JSON document, and the binary data after it."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        length = decimal(header_length.strip(), CONTENT_LENGTH_DIGITS)
        if length is None or length > len(body):
            raise RequestError(
                f"{HEADER_LENGTH} must be a length within the body's {len(body):,} bytes, "
                f"not {header_length[:20]!r}"
            )
        json_part, binary = body[:length], body[length:]
    if not json_part:
        raise RequestError("empty request body; send an inference request")
    try:
        document = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"malformed JSON ({error})") from None
    except RecursionError:
        raise RequestError("JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise RequestError("the request must be a JSON object")
    return document, binary


def _field(document: dict, key: str, kind: type, where: str):
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RequestError(f"{where} has no {key!r} ({kind.__name__})")
    return value


def _shape(shape: list, name: str) -> list[int]:
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"input {name!r}: shape must be non-negative integers, not {shape}")
    return shape


def _binary_data(tensor: dict, name: str, binary: bytes) -> bytes | None:
    """The input's binary data, which must be exactly the bytes after the JSON; None when its
    data is in the JSON."""
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"input {name!r}: parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is None:
        if binary:
            raise RequestError(
                f"{len(binary):,} bytes after the JSON, but no input has a binary_data_size"
            )
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RequestError(f"input {name!r}: binary_data_size must be a non-negative integer")
    if size != len(binary):
        raise RequestError(
            f"input {name!r}: binary_data_size is {size:,} bytes, but {len(binary):,} follow "
            f"the JSON ({HEADER_LENGTH} or binary_data_size is wrong)"
        )
    return binary


def _encoded_images(tensor: dict, data: bytes | None, count: int) -> list[EncodedImage]:
    if data is None:
        elements = _json_elements(tensor, BYTES_INPUT, count)
        if not all(isinstance(e, str) for e in elements):
            raise RequestError(f"input {BYTES_INPUT!r}: JSON data must be base64 strings")
        try:
            blobs = [base64.b64decode(e, validate=True) for e in elements]
        except (binascii.Error, ValueError):
            raise RequestError(f"input {BYTES_INPUT!r}: JSON data is not valid base64") from None
    else:
        blobs = _length_prefixed(data, count)
    return [EncodedImage(f"{BYTES_INPUT}[{i}]", blob) for i, blob in enumerate(blobs)]


def _length_prefixed(data: bytes, count: int) -> list[bytes]:
    """``count`` BYTES elements, each a 4-byte little-endian length and its bytes."""
    blobs, offset = [], 0
    for i in range(count):
        if offset + LENGTH_PREFIX.size > len(data):
            raise RequestError(f"input {BYTES_INPUT!r}: binary data ends before element {i}")
        (length,) = LENGTH_PREFIX.unpack_from(data, offset)
        offset += LENGTH_PREFIX.size
        if offset + length > len(data):
            raise RequestError(
                f"input {BYTES_INPUT!r}: element {i} says {length:,} bytes, but only "
                f"{len(data) - offset:,} are left"
            )
        blobs.append(data[offset : offset + length])
        offset += length
    if offset != len(data):
        raise RequestError(
            f"input {BYTES_INPUT!r}: {len(data) - offset:,} bytes left after its {count} elements"
        )
    return blobs


def _pixels(tensor: dict, data: bytes | None, shape: list[int]) -> np.ndarray:
    expected = math.prod(shape)
    if data is not None:
        if len(data) != expected:
            raise RequestError(
                f"input {PIXELS_INPUT!r}: shape {shape} is {expected:,} bytes, not {len(data):,}"
            )
        return np.frombuffer(data, np.uint8).reshape(shape)
    elements = _json_elements(tensor, PIXELS_INPUT, expected)
    try:
        values = np.asarray(elements)
    except (ValueError, TypeError):
        raise RequestError(f"input {PIXELS_INPUT!r}: JSON data is not a regular array") from None
    if values.dtype.kind not in "iu" or (values.size and (values.min() < 0 or values.max() > 255)):
        raise RequestError(f"input {PIXELS_INPUT!r}: UINT8 data must be integers 0 to 255")
    return values.astype(np.uint8).reshape(shape)


def _json_elements(tensor: dict, name: str, count: int) -> list:
    """The input's JSON ``data``, flat or nested, checked to hold ``count`` elements."""
    data = tensor.get("data")
    if not isinstance(data, list):
        raise RequestError(f"input {name!r} has no data: a JSON 'data' array or binary data")
    flat = flatten(data) if any(isinstance(e, list) for e in data) else data
    if len(flat) != count:
        raise RequestError(f"input {name!r}: {len(flat):,} elements, but its shape has {count:,}")
    return flat


def _requested_output(document: dict) -> RequestedOutput:
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError("the request's parameters must be an object")
    binary = parameters.get("binary_data_output") is True
    outputs = document.get("outputs")
    if outputs is None:
        return RequestedOutput(binary)
    if not isinstance(outputs, list) or len(outputs) != 1 or not isinstance(outputs[0], dict):
        raise RequestError(f"outputs must list one output: {OUTPUT!r}")
    output = outputs[0]
    if output.get("name") != OUTPUT:
        raise RequestError(f"unknown output {output.get('name')!r}; the output is {OUTPUT!r}")
    parameters = output.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"output {OUTPUT!r}: parameters must be an object")
    classes = parameters.get("classification", 0)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 0:
        raise RequestError(f"output {OUTPUT!r}: classification must be a positive integer")
    return RequestedOutput(parameters.get("binary_data", binary) is True, classes)


def response(
    model: str,
    version: str,
    request: InferRequest,
    probabilities: np.ndarray,
    top: Callable[[np.ndarray, int], list[list[Prediction]]],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: the scores, or each image's ``top(probabilities,
    K)`` as BYTES."""
    output = request.output
    if output.classification:
        best = top(probabilities, min(output.classification, probabilities.shape[1]))
        values = np.array([[f"{p.score:f}:{p.index}:{p.label}" for p in row] for row in best])
        datatype = "BYTES"
    else:
        datatype, values = "FP32", probabilities.astype(np.float32)
    tensor: dict = {"name": OUTPUT, "datatype": datatype, "shape": list(values.shape)}
    binary = b""
    if output.binary:
        binary = _bytes_tensor(values) if datatype == "BYTES" else values.tobytes()
        tensor["parameters"] = {"binary_data_size": len(binary)}
    else:
        tensor["data"] = values.ravel().tolist()
    document = {"model_name": model, "model_version": version, "outputs": [tensor]}
    if request.id is not None:
        document["id"] = request.id
    header = jsonio.dumps(document, separators=(",", ":")).encode()
    if not binary:
        return header, {"Content-Type": "application/json"}
    return header + binary, {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def _bytes_tensor(values: np.ndarray) -> bytes:
    encoded = [str(value).encode() for value in values.ravel()]
    return b"".join(LENGTH_PREFIX.pack(len(e)) + e for e in encoded)
