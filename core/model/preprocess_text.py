"""Preprocessing stated on the command line (``--preprocess "scale=1/255,bgr"``) as a
``PreprocessSpec``: for the models no registered preprocessor fits, such as one trained on
OpenCV's BGR images divided by 255.

The text is a comma-separated list of, in any order:

- at most one registered preprocessor's name, the starting point (``unit``, ``tf``...; none:
  raw 0..255 RGB values);
- ``scale=A`` or ``scale=A/B``: multiply by A (or A/B), i.e. divide by the inverse;
- ``mean=M`` and ``std=S``, subtracted then divided after the scaling, one value for every
  channel or one per channel separated by ``:`` (``mean=0.485:0.456:0.406``), in the model's
  channel order;
- ``bgr`` or ``rgb``: the channel order the model takes.

So ``(pixels[..., order] * scale - mean) / std``, ``PreprocessSpec``'s own order. A text that
is only a registered name is that preprocessor itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from zoo.base.errors import ZooError
from zoo.model.spec import PreprocessSpec


class PreprocessTextError(ZooError):
    """A ``--preprocess`` text that does not parse."""


def parse_preprocess(text: str, registered: Mapping[str, PreprocessSpec]) -> PreprocessSpec:
    """``text`` as a ``PreprocessSpec`` (named ``text``); one line for anything wrong."""
    text = text.strip()
    if text in registered:
        return registered[text]
    spec = PreprocessSpec(text)
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        key, has_value, value = item.partition("=")
        key = key.strip().lower()
        if key in seen:
            raise _error(text, f"{key!r} is given twice")
        seen.add(key)
        if not has_value:
            spec = _flag(text, item, spec, registered, seen)
        elif key == "scale":
            spec = dataclasses.replace(spec, divisor=1 / _fraction(text, value))
        elif key in ("mean", "std"):
            spec = dataclasses.replace(spec, **{key: _per_channel(text, key, value)})
        else:
            raise _error(text, f"unknown setting {key!r}; use scale=, mean=, std=")
    try:
        return dataclasses.replace(spec, name=text)  # validated again by PreprocessSpec
    except ValueError as error:
        raise _error(text, str(error)) from None


def _flag(
    text: str,
    item: str,
    spec: PreprocessSpec,
    registered: Mapping[str, PreprocessSpec],
    seen: set[str],
) -> PreprocessSpec:
    word = item.strip()
    if word.lower() in ("bgr", "rgb"):
        if {"bgr", "rgb"} <= seen:
            raise _error(text, "give one channel order")
        return dataclasses.replace(spec, channel_order=word.upper())
    if word in registered:
        if seen - {word.lower()} - {"bgr", "rgb"}:
            raise _error(text, f"name the preprocessor {word!r} first")
        return dataclasses.replace(registered[word], name=text)
    if not word:
        raise _error(text, "an empty item")
    choices = ", ".join(sorted(registered))
    if word == text:
        raise _error(text, f"no such preprocessor; choose from {choices}, or give the steps")
    raise _error(text, f"{word!r} is no preprocessor ({choices}) and no setting (scale=...)")


def _number(text: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _error(text, f"{value.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise _error(text, f"{value.strip()!r} is not a finite number")
    return number


def _fraction(text: str, value: str) -> float:
    numerator, slash, denominator = value.partition("/")
    number = _number(text, numerator)
    if slash:
        below = _number(text, denominator)
        if below == 0:
            raise _error(text, "scale divides by zero")
        number /= below
    if number == 0:
        raise _error(text, "scale must be non-zero")
    return number


def _per_channel(text: str, key: str, value: str) -> tuple[float, float, float]:
    values = [_number(text, part) for part in value.split(":")]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise _error(text, f"{key} takes one value or three (R:G:B), not {len(values)}")
    if key == "std" and 0 in values:
        raise _error(text, "std must be non-zero")
    return tuple(values)


def _error(text: str, why: str) -> PreprocessTextError:
    return PreprocessTextError(f"--preprocess {text!r}: {why}")
