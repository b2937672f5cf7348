"""Class labels, and turning probabilities into top-K predictions.

Keras's ``decode_predictions`` downloads ``imagenet_class_index.json`` on first use; zoo ships
that file (md5 c2c37ea517e94d9795004a39431a14cb, Keras's own) so decoding never needs a network.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING

from zoo.model.spec import Labels

if TYPE_CHECKING:
    import numpy as np

LabelList = tuple[tuple[str, str], ...]
"""One (class_id, label) pair per model output, in output order."""


@functools.cache
def imagenet_labels() -> LabelList:
    text = resources.files("zoo").joinpath("data/imagenet_class_index.json").read_text("utf-8")
    index = json.loads(text)
    return tuple((index[str(i)][0], index[str(i)][1]) for i in range(len(index)))


NAMED_LABELS = {"imagenet": imagenet_labels}


def resolve_labels(labels: Labels) -> LabelList:
    """A label set as registered (a name, labels, or (class_id, label) pairs) as pairs."""
    if isinstance(labels, str):
        if labels not in NAMED_LABELS:
            raise ValueError(f"unknown label set {labels!r}; known: {', '.join(NAMED_LABELS)}")
        return NAMED_LABELS[labels]()
    return tuple((item, item) if isinstance(item, str) else (item[0], item[1]) for item in labels)


@dataclass(frozen=True)
class Prediction:
    """One of an image's top-K classes."""

    rank: int
    index: int
    class_id: str
    label: str
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def top_k(probabilities: np.ndarray, labels: Sequence[tuple[str, str]], k: int) -> list[Prediction]:
    """The ``k`` most probable classes of one image, best first.

    Ranks with the same ``argsort`` as Keras's ``decode_predictions``, so ties break alike.
    """
    if len(probabilities) != len(labels):
        raise ValueError(f"the model has {len(probabilities)} outputs but {len(labels)} labels")
    best = probabilities.argsort()[-k:][::-1]
    # float32's own repr is the shortest decimal that reads back as it: 0.93, not 0.930000007
    scores = probabilities.astype("float32", copy=False)
    return [
        Prediction(rank, int(i), labels[i][0], labels[i][1], float(str(scores[i])))
        for rank, i in enumerate(best, start=1)
    ]
