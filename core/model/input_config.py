"""``InputConfig``: the one description of what a model expects and gives back.

In the spirit of timm's ``PretrainedCfg`` and ``resolve_data_config``: the input size, the
preprocessing (as data), the labels, the resize filter and whether the graph ends in logits
travel together, as one value, in every carrier: a registered ``ModelSpec`` (``spec.input``,
resolved by the registry), an exported ``.onnx`` file's card, a trained bundle's card and a
loaded ``Model``. ``resolve`` is the only place where a user's option overrides the model's
own. Adding a setting touches this module, the option that sets it and the code that uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from zoo.base.errors import ZooError
from zoo.model.interpolation import INTERPOLATION_NAMES, KERAS_INTERPOLATION
from zoo.model.spec import ModelSpec, PreprocessSpec, input_size_problem

if TYPE_CHECKING:
    from zoo.model.labels import LabelList

OUTPUT_KINDS = ("probabilities", "logits")


@dataclass(frozen=True)
class InputConfig:
    """What a model's images are made into, and what its outputs mean."""

    size: tuple[int, int]
    """(height, width) in pixels."""
    preprocess: PreprocessSpec
    labels: LabelList
    """One (class_id, label) pair per output, in output order."""
    interpolation: str = KERAS_INTERPOLATION
    """The resize filter the model was trained with."""
    output: Literal["probabilities", "logits"] = "probabilities"
    """What the model's own graph ends in; zoo applies the softmax to logits."""

    def __post_init__(self) -> None:
        if problem := input_size_problem(self.size):
            raise ValueError(f"input size {problem}")
        if self.interpolation not in INTERPOLATION_NAMES:
            choices = ", ".join(INTERPOLATION_NAMES)
            raise ValueError(f"unknown interpolation {self.interpolation!r}; choose from {choices}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"output must be 'probabilities' or 'logits', not {self.output!r}")
        if not self.labels:
            raise ValueError("a model needs at least one label")

    @property
    def channels(self) -> int:
        """The model's input channels: 1 for a grayscale model (its preprocessing's channel
        order ``L``, which the card carries), else 3. Photos are RGB either way."""
        return self.preprocess.channels

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON data: the one writer of a model's input settings, in every
        card (the ``.onnx`` file's, a trained bundle's, an imported model's)."""
        return {
            field.name: _ENCODE.get(field.name, _same)(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputConfig:
        """``to_dict`` reversed: a field absent from ``data`` (a card written before the field
        existed) takes its default; unknown keys are ignored. ``ValueError`` or ``KeyError``
        naming what is wrong, for a reader to put in context."""
        if not isinstance(data, dict):
            raise ValueError(f"the input settings are a {type(data).__name__}, not an object")
        given = {}
        for field in dataclasses.fields(cls):
            if field.name in data:
                given[field.name] = _DECODE.get(field.name, _same)(data[field.name])
            elif field.default is dataclasses.MISSING:
                raise KeyError(field.name)
        return cls(**given)


def _same(value):
    return value


def _labels(pairs) -> tuple[tuple[str, str], ...]:
    return tuple((str(class_id), str(label)) for class_id, label in pairs)


_ENCODE = {
    "size": list,
    "preprocess": PreprocessSpec.to_dict,
    "labels": lambda labels: [list(pair) for pair in labels],
}
_DECODE = {"size": tuple, "preprocess": PreprocessSpec.from_dict, "labels": _labels}


def model_spec(config: InputConfig, **fields: Any) -> ModelSpec:
    """The ``ModelSpec`` that declares ``config`` (size, preprocessing, labels, and each other
    setting ``ModelSpec`` has a field of the same name for), with ``fields`` (name, build,
    weights...): how every card becomes a registered model."""
    declared = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name != "size" and field.name in _MODEL_SPEC_FIELDS
    }
    return ModelSpec(input_size=config.size, **declared, **fields)


_MODEL_SPEC_FIELDS = {field.name for field in dataclasses.fields(ModelSpec)}


@dataclass(frozen=True)
class InputOverrides:
    """The user's options for a model's input; None: the model's own."""

    interpolation: str | None = None


def resolve(config: InputConfig, overrides: InputOverrides | None = None) -> InputConfig:
    """``config`` with the user's options applied: the one place an option overrides the
    model's own setting."""
    if overrides is None:
        return config
    given = {
        field.name: value
        for field in dataclasses.fields(overrides)
        if (value := getattr(overrides, field.name)) is not None
    }
    try:
        return dataclasses.replace(config, **given)
    except ValueError as error:  # the user's option, not the model's: one line for them
        raise ZooError(str(error)) from None
