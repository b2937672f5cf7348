"""A predict request's encoded images, in one of three forms, within the body-size cap.

- the image itself as the body (``curl --data-binary @photo.jpg``): Content-Type ``image/*``,
  ``application/octet-stream``, none, or ``application/x-www-form-urlencoded`` (what curl sends
  unless told otherwise);
- ``multipart/form-data`` with one or more file fields (``curl -F image=@photo.jpg``);
- ``application/json``: ``{"instances": [{"b64": "<base64 image>", "name": "optional"}, ...]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from zoo.serve.errors import ClientDisconnected, PayloadTooLarge, RequestError, UnsupportedMediaType

RAW_BODY_TYPES = ("", "application/octet-stream", "application/x-www-form-urlencoded")
ACCEPTED = "image/*, application/octet-stream, multipart/form-data or application/json"
QUERY_DIGITS = 9
CONTENT_LENGTH_DIGITS = 18
"""Up to an exabyte: any body worth comparing with the limit."""


@dataclass(frozen=True)
class EncodedImage:
    name: str
    """What the answer calls it: the upload's file name, the JSON ``name``, or "body"."""
    data: bytes


async def read_images(request: Request, max_body_bytes: int) -> list[EncodedImage]:
    """The request's images, still encoded; ``RequestError`` for anything malformed."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    is_raw = media_type in RAW_BODY_TYPES or media_type.startswith("image/")
    if not is_raw and media_type not in ("multipart/form-data", "application/json"):
        raise UnsupportedMediaType(f"unsupported Content-Type {media_type!r}; send {ACCEPTED}")
    body = await read_body(request, max_body_bytes)
    if not body:
        raise RequestError("empty request body; send an image")
    if media_type == "multipart/form-data":
        return await _uploaded_files(request, body)
    if media_type == "application/json":
        return _json_instances(body)
    return [EncodedImage("body", body)]


def query_integer(request: Request, name: str, default: int) -> int:
    """The query parameter ``name``, a positive integer of at most ``QUERY_DIGITS`` digits, or
    ``default`` when it is absent; ``RequestError`` for anything else."""
    text = request.query_params.get(name)
    if text is None:
        return default
    value = decimal(text, QUERY_DIGITS)
    if not value:
        shown = text if len(text) <= 20 else f"{text[:20]}..."
        raise RequestError(
            f"{name} must be a positive integer of at most {QUERY_DIGITS} digits, not {shown!r}"
        )
    return value


def decimal(text: str, digits: int) -> int | None:
    """``text`` as an integer if it is 1 to ``digits`` ASCII digits, else None.

    ``str.isdigit`` alone also accepts digits ``int`` refuses ('²'), and ``int`` refuses more
    than 4,300 digits."""
    if 0 < len(text) <= digits and text.isascii() and text.isdigit():
        return int(text)
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = decimal(request.headers.get("content-length", ""), CONTENT_LENGTH_DIGITS)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected from None
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body larger than {limit:,} bytes (--max-body-mb)")


async def _uploaded_files(request: Request, body: bytes) -> list[EncodedImage]:
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form()
    except HTTPException as error:  # Starlette's answer to a malformed multipart body
        raise RequestError(f"malformed multipart body: {error.detail}") from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise RequestError("the multipart form has no file; send the image as a file field")
    return [
        EncodedImage(file.filename or f"file[{i}]", await file.read())
        for i, file in enumerate(files)
    ]


def _json_instances(body: bytes) -> list[EncodedImage]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise RequestError(f"malformed JSON ({error})") from None
    except RecursionError:  # the parser's own bound on nesting, far beyond what is expected
        raise RequestError(
            'JSON nested too deeply; send {"instances": [{"b64": "<base64 image>"}, ...]}'
        ) from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not instances:
        raise RequestError('JSON must be {"instances": [{"b64": "<base64 image>"}, ...]}')
    images = []
    for i, instance in enumerate(instances):
        encoded = instance.get("b64") if isinstance(instance, dict) else None
        if not isinstance(encoded, str):
            raise RequestError(f'instances[{i}] has no "b64" string')
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"instances[{i}].b64 is not valid base64") from None
        name = instance.get("name")
        images.append(
            EncodedImage(name if isinstance(name, str) and name else f"instances[{i}]", data)
        )
    return images
