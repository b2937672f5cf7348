"""What a zoo-exported ONNX file says about itself, in its ``metadata_props``.

One key, ``zoo``, holds a JSON document: the model's name, input (name, layout, size), outputs,
the preprocessing spec as data, the labels, and where the weights came from. It is everything
``zoo predict model.onnx photo.jpg`` needs: no registry, no plugin, no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .labels import LabelList
from .specs import PreprocessSpec

METADATA_KEY = "zoo"
FORMAT_VERSION = 1
"""Bumped when the document changes incompatibly; a reader refuses versions it does not know."""


@dataclass(frozen=True)
class ModelCard:
    """The description of an exported model that travels inside the .onnx file."""

    model: str
    input_size: tuple[int, int]
    """(height, width)"""
    preprocess: PreprocessSpec
    labels: LabelList
    weights: str
    """Where the weights came from: "imagenet", "none" (seeded random init) or a file name."""
    weights_sha256: str | None
    """The sha256 of the source weights file; None for random init."""
    zoo_version: str
    opset: int
    input_name: str = "image"
    input_layout: str = "NHWC"
    input_dtype: str = "float32"
    """float32: preprocessed values; uint8: raw RGB pixels, preprocessing inside the graph."""
    probabilities_name: str = "probabilities"
    logits_name: str | None = "logits"
    """The pre-softmax output, when the exporter could expose it."""

    def to_json(self) -> str:
        document = {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "zoo_version": self.zoo_version,
            "opset": self.opset,
            "input": {
                "name": self.input_name,
                "layout": self.input_layout,
                "dtype": self.input_dtype,
                "size": list(self.input_size),
            },
            "outputs": {"probabilities": self.probabilities_name, "logits": self.logits_name},
            "preprocess": self.preprocess.to_dict(),
            "weights": {"source": self.weights, "sha256": self.weights_sha256},
            "labels": [list(pair) for pair in self.labels],
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse the document; ``ValueError`` (naming what is wrong) if it is not one we know."""
        try:
            document: dict[str, Any] = json.loads(text)
            version = document.get("format_version")
        except (ValueError, AttributeError) as error:
            raise ValueError(f"malformed zoo metadata ({type(error).__name__}: {error})") from None
        if version != FORMAT_VERSION:
            raise ValueError(f"zoo metadata format {version!r}; this zoo reads {FORMAT_VERSION}")
        try:
            inputs, outputs = document["input"], document["outputs"]
            return cls(
                model=document["model"],
                input_size=tuple(inputs["size"]),
                preprocess=PreprocessSpec.from_dict(document["preprocess"]),
                labels=tuple((str(c), str(label)) for c, label in document["labels"]),
                weights=document["weights"]["source"],
                weights_sha256=document["weights"]["sha256"],
                zoo_version=document["zoo_version"],
                opset=document["opset"],
                input_name=inputs["name"],
                input_layout=inputs["layout"],
                input_dtype=inputs["dtype"],
                probabilities_name=outputs["probabilities"],
                logits_name=outputs["logits"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed zoo metadata ({type(error).__name__}: {error})") from None
