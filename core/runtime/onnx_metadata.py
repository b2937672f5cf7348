"""A .onnx file's ``metadata_props`` (where zoo's model card lives), read without loading the
graph and without the ``onnx`` package: runtimes other than ONNX Runtime (OpenCV DNN) do not
expose them, and parsing the whole protobuf would hold every weight in memory.

An ONNX file is a ``ModelProto`` message: a sequence of (field number, wire type) tags, each
followed by its value. ``metadata_props`` is field 14, repeated ``StringStringEntryProto``
(``key`` = 1, ``value`` = 2); every other field, the graph (field 7) included, is skipped by
its length.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from zoo.model.card import ModelCard
from zoo.runtime.onnx_file import ModelFileError, card_from_metadata

_METADATA_PROPS = 14
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class NotOnnx(ValueError):
    """The bytes are not a protobuf message (so not a .onnx file)."""


def file_card(path: str | os.PathLike) -> ModelCard:
    """The zoo model card of the .onnx file at ``path``; ``ModelFileError`` (one line) when the
    file is missing, is not ONNX or has no card."""
    try:
        metadata = read_metadata(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    except NotOnnx as error:
        raise ModelFileError(f"{path}: not an ONNX file ({error})") from None
    return card_from_metadata(metadata, path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's ``metadata_props`` as a dict; ``OSError`` if it cannot be read, ``NotOnnx``
    if it is not a protobuf message."""
    metadata = {}
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        while file.tell() < size:
            field, wire = _tag(file)
            if field == _METADATA_PROPS and wire == _LENGTH:
                entry = _entry(_read(file, _varint(file)))
                metadata[entry.get(1, "")] = entry.get(2, "")
            else:
                _skip(file, wire, size)
    return metadata


def _entry(message: bytes) -> dict[int, str]:
    """A ``StringStringEntryProto``: its string fields by number."""
    stream, fields = io.BytesIO(message), {}
    while stream.tell() < len(message):
        field, wire = _tag(stream)
        if wire != _LENGTH:
            _skip(stream, wire, len(message))
            continue
        try:
            fields[field] = _read(stream, _varint(stream)).decode("utf-8")
        except UnicodeDecodeError:
            raise NotOnnx("a metadata string is not UTF-8") from None
    return fields


def _tag(stream: BinaryIO) -> tuple[int, int]:
    key = _varint(stream)
    if key >> 3 == 0:
        raise NotOnnx("field number 0")
    return key >> 3, key & 7


def _varint(stream: BinaryIO) -> int:
    value = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise NotOnnx("truncated")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise NotOnnx("a varint longer than 64 bits")


def _read(stream: BinaryIO, count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise NotOnnx("truncated")
    return data


def _skip(stream: BinaryIO, wire: int, size: int) -> None:
    if wire == _VARINT:
        _varint(stream)
        return
    lengths = {_FIXED64: 8, _FIXED32: 4}
    if wire == _LENGTH:
        count = _varint(stream)
    elif wire in lengths:
        count = lengths[wire]
    else:
        raise NotOnnx(f"wire type {wire}")
    if stream.tell() + count > size:
        raise NotOnnx("truncated")
    stream.seek(count, os.SEEK_CUR)
