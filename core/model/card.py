"""What a zoo-exported ONNX file says about itself, in its ``metadata_props``.

One key, ``zoo``, holds a JSON document: the model's name, input (name, layout, dtype, size),
outputs, the preprocessing spec as data, the labels, and where the weights came from. It is
everything ``zoo predict model.onnx photo.jpg`` needs: no registry, no plugin, no TensorFlow.
A verified export also records where it was verified (``verified_on``): an int8 file's results
depend on the CPU's integer kernels, so a loader compares that with the CPU it runs on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from zoo.base import jsonio
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec

METADATA_KEY = "zoo"
FORMAT_VERSION = 2
"""Bumped when an older reader would misread the document; a reader refuses versions it does
not know. 2: an input of dtype uint8 takes raw pixels, the preprocessing is in the graph (a
version-1 reader would feed it preprocessed floats cast to uint8). A card is written with the
lowest version that describes it, so plain float32 exports stay readable by version-1 zoo."""
READABLE_VERSIONS = (1, 2)

RAW_PIXELS = PreprocessSpec("raw")
"""The identity: what the host does to the pixels when the graph preprocesses them itself."""


@dataclass(frozen=True)
class TopKOutputs:
    """The optional ``TopK`` outputs on the probabilities: the k best scores and their classes."""

    k: int
    scores_name: str = "top_k_scores"
    indices_name: str = "top_k_indices"


@dataclass(frozen=True)
class VerifiedOn:
    """The machine an export's verification ran on: what decides an int8 file's results."""

    cpu_class: str
    """The CPU's instruction-set class (``zoo.base.hardware.cpu_class``), e.g. avx512_vnni, avx2."""
    onnxruntime: str | None

    @classmethod
    def here(cls) -> VerifiedOn:
        from zoo.base.hardware import cpu_class, onnxruntime_version

        return cls(cpu_class(), onnxruntime_version())

    def to_dict(self) -> dict:
        return {"cpu_class": self.cpu_class, "onnxruntime": self.onnxruntime}


@dataclass(frozen=True)
class ModelCard:
    """The description of an exported model that travels inside the .onnx file."""

    model: str
    input: InputConfig
    """Size, preprocessing, labels and resize filter of the model the file was made from (its
    graph always ends in probabilities)."""
    weights: str
    """Where the weights came from: "imagenet", "none" (seeded random init) or a file name."""
    weights_sha256: str | None
    """The sha256 of the source weights file; None for random init."""
    zoo_version: str
    opset: int
    precision: str = "fp32"
    """What the graph computes in: fp32, or a lower-precision variant (fp16, int8)."""
    input_name: str = "image"
    input_layout: str = "NHWC"
    input_dtype: str = "float32"
    """float32: preprocessed values; uint8: raw RGB pixels, preprocessing inside the graph."""
    probabilities_name: str = "probabilities"
    logits_name: str | None = "logits"
    """The pre-softmax output, when the exporter could expose it."""
    top_k: TopKOutputs | None = None
    verified_on: VerifiedOn | None = None
    """Where the export was verified; None: not verified, or exported before zoo recorded it."""

    @property
    def embeds_preprocessing(self) -> bool:
        return self.input_dtype == "uint8"

    @property
    def host_input(self) -> InputConfig:
        """What a caller makes of an image before the graph: ``input``, less the
        preprocessing when the graph does it (uint8 input)."""
        if not self.embeds_preprocessing:
            return self.input
        return dataclasses.replace(self.input, preprocess=RAW_PIXELS)

    def to_json(self) -> str:
        settings = self.input.to_dict()  # preprocess and labels sit at the top, as in format 1
        preprocess, labels = settings.pop("preprocess"), settings.pop("labels")
        document = {
            "format_version": FORMAT_VERSION if self.embeds_preprocessing else 1,
            "model": self.model,
            "zoo_version": self.zoo_version,
            "opset": self.opset,
            "precision": self.precision,
            "input": {
                "name": self.input_name,
                "layout": self.input_layout,
                "dtype": self.input_dtype,
                **settings,
            },
            "outputs": {
                "probabilities": self.probabilities_name,
                "logits": self.logits_name,
                "top_k": _top_k_to_dict(self.top_k),
            },
            "preprocess": preprocess,
            "weights": {"source": self.weights, "sha256": self.weights_sha256},
            "labels": labels,
        }
        if self.verified_on is not None:  # an optional key: older readers skip it
            document["verified_on"] = self.verified_on.to_dict()
        return jsonio.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse the document; ``ValueError`` (naming what is wrong) if it is not one we know."""
        try:
            document: dict[str, Any] = json.loads(text)
            version = document.get("format_version")
        except (ValueError, AttributeError) as error:
            raise ValueError(f"malformed zoo metadata ({type(error).__name__}: {error})") from None
        if version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, READABLE_VERSIONS))
            raise ValueError(f"zoo metadata format {version!r}; this zoo reads {readable}")
        try:
            inputs, outputs = document["input"], document["outputs"]
            return cls(
                model=document["model"],
                input=InputConfig.from_dict(
                    {
                        **inputs,
                        "preprocess": document["preprocess"],
                        "labels": document["labels"],
                        "output": "probabilities",  # what every exported graph ends in
                    }
                ),
                weights=document["weights"]["source"],
                weights_sha256=document["weights"]["sha256"],
                zoo_version=document["zoo_version"],
                opset=document["opset"],
                precision=document.get("precision", "fp32"),  # absent before int8 and fp16 existed
                input_name=inputs["name"],
                input_layout=inputs["layout"],
                input_dtype=inputs["dtype"],
                probabilities_name=outputs["probabilities"],
                logits_name=outputs["logits"],
                top_k=_top_k_from_dict(outputs.get("top_k")),  # absent before version 2
                verified_on=_verified_on_from_dict(document.get("verified_on")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed zoo metadata ({type(error).__name__}: {error})") from None


def _top_k_to_dict(top_k: TopKOutputs | None) -> dict | None:
    if top_k is None:
        return None
    return {"k": top_k.k, "scores": top_k.scores_name, "indices": top_k.indices_name}


def _top_k_from_dict(data: dict | None) -> TopKOutputs | None:
    if data is None:
        return None
    return TopKOutputs(int(data["k"]), data["scores"], data["indices"])


def _verified_on_from_dict(data: dict | None) -> VerifiedOn | None:
    if data is None:
        return None
    return VerifiedOn(str(data["cpu_class"]), data.get("onnxruntime"))
