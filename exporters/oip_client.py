"""A small client of the Open Inference Protocol (v2) over HTTP, standard library only, for
talking to a server zoo does not trust: ``zoo verify --endpoint``.

Every call is bounded: one deadline covers connecting, sending, the headers and the body (a
server that accepts and never answers, or trickles a byte a second, is cut off when it runs
out, by shutting the socket down); a body is read up to ``MAX_BODY_BYTES`` and no further; a
redirect is followed only to the same scheme, host and port, and only ``MAX_REDIRECTS``
times. Whatever goes wrong is an ``EndpointError``: one line, naming the URL and what was
seen, the server's own words shown escaped and cut short.

Tensors go in the JSON (``data``) or, with the binary tensor data extension, after it
(``Inference-Header-Content-Length``, ``binary_data_size``); answers are read either way.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import math
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass

import numpy as np

from zoo.base import jsonio
from zoo.base.errors import ZooError
from zoo.base.jsonio import flatten

MAX_BODY_BYTES = 16 * 1024 * 1024
"""The most bytes of one answer read: a classifier's scores for a batch are kilobytes."""
MAX_REDIRECTS = 3
HEADER_LENGTH = "Inference-Header-Content-Length"
LENGTH_PREFIX = struct.Struct("<I")
SHOWN = 200
"""The most characters of a server's own text shown in a message."""
DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
"""The protocol's numeric datatypes as NumPy's (little-endian in binary data)."""


class EndpointError(ZooError):
    """The endpoint could not be asked, or answered something that is not an answer."""


def shown(text: object) -> str:
    """A server's words as they may appear in one line: escaped, cut to ``SHOWN``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = str(text)
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= SHOWN else escaped[:SHOWN] + "..."


@dataclass(frozen=True)
class Tensor:
    """One input or output: a name, the protocol's datatype and shape, and its values (a
    NumPy array; for BYTES, a list of ``bytes``)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class OipClient:
    """The Open Inference Protocol at ``url`` (``http://host:port``, with a path prefix if the
    server sits under one); each call finishes within ``timeout`` seconds or fails."""

    def __init__(self, url: str, timeout: float):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise EndpointError(f"{shown(url)}: not an http:// or https:// URL")
        try:
            parsed.port  # noqa: B018 -- a port that is not a number raises here
        except ValueError:
            raise EndpointError(f"{shown(url)}: not a valid port") from None
        if parsed.query or parsed.fragment:
            raise EndpointError(f"{shown(url)}: give the server's URL, without ? or #")
        self.url = url.rstrip("/")
        self.origin = _origin(parsed)
        self.prefix = parsed.path.rstrip("/")
        self.timeout = timeout

    # The protocol's calls.

    def server_metadata(self) -> dict:
        return self.get_json("/v2")

    def model_metadata(self, model: str) -> dict:
        return self.get_json(f"/v2/models/{_quote(model)}")

    def model_ready(self, model: str) -> bool:
        answer = self.request("GET", f"/v2/models/{_quote(model)}/ready")
        return answer.status == 200

    def infer(
        self,
        model: str,
        inputs: list[Tensor],
        outputs: list[dict] | None = None,
        binary: bool = False,
    ) -> dict[str, Tensor]:
        """The outputs of one inference, by name; ``outputs`` is the request's ``outputs``
        (None: every output, as the server chooses), ``binary``: inputs and outputs through
        the binary tensor data extension."""
        body, headers = infer_body(inputs, outputs, binary)
        path = f"/v2/models/{_quote(model)}/infer"
        answer = self.request("POST", path, body, headers)
        self._require_ok(answer, path)
        return parse_answer(answer, f"{self.url}{path}")

    # HTTP.

    def get_json(self, path: str) -> dict:
        answer = self.request("GET", path)
        self._require_ok(answer, path)
        document = _json(answer.body, f"{self.url}{path}")
        if not isinstance(document, dict):
            raise EndpointError(f"{self.url}{path}: answered JSON that is not an object")
        return document

    def request(self, method: str, path: str, body: bytes = b"", headers=None) -> Answer:
        """One request, and the same-origin redirects it is given, all within the timeout."""
        deadline = time.monotonic() + self.timeout
        url = f"{self.url}{path}"
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._once(method, url, body, headers or {}, deadline)
            if answer.status not in (301, 302, 303, 307, 308):
                return answer
            location = answer.headers.get("Location")
            if not location:
                raise EndpointError(f"{url}: redirect ({answer.status}) with no Location")
            target = urllib.parse.urljoin(url, location)
            if _origin(urllib.parse.urlsplit(target)) != self.origin:
                raise EndpointError(
                    f"{url}: redirects ({answer.status}) to another host, {shown(target)}; "
                    "not followed"
                )
            url = target
        raise EndpointError(f"{self.url}{path}: more than {MAX_REDIRECTS} redirects")

    def _once(self, method: str, url: str, body: bytes, headers: dict, deadline: float) -> Answer:
        parsed = urllib.parse.urlsplit(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out(url)
        kind = (
            http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parsed.hostname, parsed.port, timeout=remaining)
        # A hard stop at the deadline: a socket timeout bounds each read, not their sum. What
        # was read when it fired is cut short, whatever it looks like: not an answer.
        stopped = threading.Event()
        watchdog = threading.Timer(remaining, _shut, [connection, stopped])
        watchdog.daemon = True
        watchdog.start()
        target = parsed.path or "/"
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, _read_capped(response, url))
        except EndpointError:
            raise
        except TimeoutError:
            raise self._timed_out(url) from None
        except ConnectionRefusedError:
            raise EndpointError(f"{url}: connection refused (is the server running?)") from None
        except socket.gaierror as error:
            raise EndpointError(f"{url}: unknown host ({error.strerror})") from None
        except (OSError, http.client.HTTPException) as error:
            if stopped.is_set():
                raise self._timed_out(url) from None
            reason = shown(error) or type(error).__name__
            raise EndpointError(f"{url}: the connection failed ({reason})") from None
        finally:
            watchdog.cancel()
            connection.close()
        if stopped.is_set():
            raise self._timed_out(url)
        return answer

    def _timed_out(self, url: str) -> EndpointError:
        return EndpointError(f"{url}: no answer within {self.timeout:g} s (--timeout)")

    def _require_ok(self, answer: Answer, path: str) -> None:
        if answer.status == 200:
            return
        said = answer.body
        try:
            document = json.loads(said)
            if isinstance(document, dict) and "error" in document:
                said = document["error"]
        except ValueError:
            pass
        words = f": {shown(said)}" if said else ""
        raise EndpointError(f"{self.url}{path}: HTTP {answer.status}{words}")


def _origin(parsed: urllib.parse.SplitResult) -> tuple:
    default = 443 if parsed.scheme == "https" else 80
    return (parsed.scheme, (parsed.hostname or "").lower(), parsed.port or default)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _shut(connection: http.client.HTTPConnection, stopped: threading.Event) -> None:
    stopped.set()
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)


def _read_capped(response: http.client.HTTPResponse, url: str) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise EndpointError(
            f"{url}: a body of {int(declared):,} bytes; at most {MAX_BODY_BYTES:,} are read"
        )
    chunks, size = [], 0
    while chunk := response.read(min(65536, MAX_BODY_BYTES + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise EndpointError(f"{url}: a body of more than {MAX_BODY_BYTES:,} bytes; not read")
    return b"".join(chunks)


def _json(data: bytes, where: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EndpointError(f"{where}: answered invalid JSON: {shown(data[:SHOWN])}") from None


# Bodies.


def infer_body(
    inputs: list[Tensor], outputs: list[dict] | None, binary: bool
) -> tuple[bytes, dict[str, str]]:
    """An inference request's body and headers."""
    tensors, blobs = [], []
    for tensor in inputs:
        described = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if binary:
            blob = _to_binary(tensor)
            described["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif tensor.datatype == "BYTES":
            # JSON strings are text: an encoded image travels in base64
            described["data"] = [base64.b64encode(e).decode("ascii") for e in tensor.data]
        else:
            described["data"] = np.asarray(tensor.data).ravel().tolist()
        tensors.append(described)
    document: dict = {"inputs": tensors}
    if outputs is not None:
        document["outputs"] = [
            {**output, "parameters": {**output.get("parameters", {}), "binary_data": binary}}
            for output in outputs
        ]
    elif binary:
        document["parameters"] = {"binary_data_output": True}
    header = jsonio.dumps(document, separators=(",", ":")).encode()
    if not binary:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def _to_binary(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return b"".join(LENGTH_PREFIX.pack(len(e)) + e for e in tensor.data)
    dtype = np.dtype(DTYPES[tensor.datatype]).newbyteorder("<")
    return np.ascontiguousarray(tensor.data, dtype=dtype).tobytes()


def parse_answer(answer: Answer, where: str) -> dict[str, Tensor]:
    """An inference response's outputs, by name, each checked against its own shape."""
    header_length = answer.headers.get(HEADER_LENGTH)
    body, binary = answer.body, b""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise EndpointError(
                f"{where}: {HEADER_LENGTH} {shown(header_length)} is not a length within the "
                f"body's {len(body):,} bytes"
            )
        body, binary = body[: int(header_length)], body[int(header_length) :]
    document = _json(body, where)
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise EndpointError(f"{where}: the answer has no list of outputs: {shown(body[:SHOWN])}")
    found, offset = {}, 0
    for output in outputs:
        tensor, used = _output(output, binary, offset, where)
        offset += used
        found[tensor.name] = tensor
    if offset != len(binary):
        raise EndpointError(f"{where}: {len(binary) - offset:,} bytes left after the outputs")
    return found


def _output(output: dict, binary: bytes, offset: int, where: str) -> tuple[Tensor, int]:
    """One output and how many binary bytes it took."""
    name, datatype, shape = output.get("name"), output.get("datatype"), output.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise EndpointError(f"{where}: an output without a name or datatype")
    what = f"{where}: output {shown(name)}"
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise EndpointError(f"{what}: shape {shown(shape)} is not a list of sizes")
    if datatype != "BYTES" and datatype not in DTYPES:
        raise EndpointError(f"{what}: unknown datatype {shown(datatype)}")
    count = math.prod(shape)
    parameters = output.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise EndpointError(f"{what}: binary_data_size {shown(size)} overruns the body")
        blob = binary[offset : offset + size]
        data = _from_binary(blob, datatype, count, what)
        if datatype != "BYTES":
            data = data.reshape(shape)
        return Tensor(name, datatype, shape, data), size
    elements = output.get("data")
    if not isinstance(elements, list):
        raise EndpointError(f"{what}: no data")
    flat = flatten(elements)
    if len(flat) != count:
        raise EndpointError(f"{what}: {len(flat):,} values for shape {shape}")
    if datatype == "BYTES":
        if not all(isinstance(e, str) for e in flat):
            raise EndpointError(f"{what}: BYTES data that is not strings")
        return Tensor(name, datatype, shape, [e.encode() for e in flat]), 0
    if not all(isinstance(e, int | float) and not isinstance(e, bool) for e in flat):
        raise EndpointError(f"{what}: {datatype} data that is not numbers")
    return Tensor(name, datatype, shape, np.array(flat, np.float64).reshape(shape)), 0


def _from_binary(blob: bytes, datatype: str, count: int, what: str):
    if datatype == "BYTES":
        elements, offset = [], 0
        for _ in range(count):
            if offset + LENGTH_PREFIX.size > len(blob):
                raise EndpointError(f"{what}: BYTES data ends early")
            (length,) = LENGTH_PREFIX.unpack_from(blob, offset)
            offset += LENGTH_PREFIX.size
            if offset + length > len(blob):
                raise EndpointError(f"{what}: BYTES data ends early")
            elements.append(blob[offset : offset + length])
            offset += length
        if offset != len(blob):
            raise EndpointError(f"{what}: bytes left after its BYTES data")
        return elements
    dtype = np.dtype(DTYPES[datatype]).newbyteorder("<")
    if len(blob) != count * dtype.itemsize:
        raise EndpointError(f"{what}: {len(blob):,} bytes, not {count} {datatype} values")
    return np.frombuffer(blob, dtype).astype(dtype.newbyteorder("="))
