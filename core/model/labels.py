"""Class labels, and turning probabilities into top-K predictions.

Keras's ``decode_predictions`` downloads ``imagenet_class_index.json`` on first use; zoo ships
that file (md5 c2c37ea517e94d9795004a39431a14cb, Keras's own) so decoding never needs a network.
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING

from zoo.base.errors import ZooError
from zoo.base.printing import printable
from zoo.base.user_files import Bound, read_user_file
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


LABELS_FILE = Bound("a labels file", 16, "ZOO_MAX_LABELS_MB")
"""A labels file is read whole: 16 MiB holds 100,000 labels of 160 bytes."""


class LabelsError(ZooError):
    """Labels zoo will not take: a file it cannot read as labels, or a label that is not
    text."""


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot be a class label, or None. A label is written into JSON, terminal
    lines, ONNX metadata and HTTP answers: it must be non-empty text that UTF-8 can encode (no
    lone surrogate, which is what a file name's undecodable byte becomes) and hold no control
    character (a newline, a terminal escape, NUL)."""
    if not isinstance(label, str):
        return f"is not text ({type(label).__name__})"
    if not label.strip():
        return "is empty"
    for character in label:
        category = unicodedata.category(character)
        if category == "Cs":
            return f"holds a lone surrogate (U+{ord(character):04X}), which is not UTF-8 text"
        if category == "Cc":
            return f"holds a control character (U+{ord(character):04X})"
    return None


def check_labels(labels: Iterable[object], where: str, what: str = "label", hint: str = "") -> None:
    """Refuse, in one line naming ``where`` and the first bad label (``what`` calls it), labels
    that ``label_problem`` refuses; ``hint`` says what to do."""
    for index, label in enumerate(labels):
        if problem := label_problem(label):
            shown = printable(label) if isinstance(label, str) else repr(label)[:40]
            raise LabelsError(f"{where}: {what} {index} ('{shown}') {problem}{hint}")


def read_label_file(path: str | os.PathLike) -> tuple[str, ...]:
    """The labels in the user's file ``path``: a JSON list of strings, or one per line (a
    UTF-8 byte order mark dropped, blank lines skipped), each checked by ``label_problem``.
    Read as ``zoo.base.user_files`` reads a user's file: a FIFO or a device is refused without
    waiting on it, a file over ``LABELS_FILE`` without reading it."""
    where = f"--labels {printable(str(path))}"
    data = read_user_file(path, LABELS_FILE, where)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LabelsError(f"{where}: not UTF-8 text (byte {error.start:,})") from None
    if text.lstrip().startswith("["):
        try:
            labels = json.loads(text)
        except (ValueError, RecursionError) as error:
            reason = "nested too deep" if isinstance(error, RecursionError) else error
            raise LabelsError(f"{where}: not a JSON list ({reason})") from None
        if not isinstance(labels, list):
            raise LabelsError(f"{where}: not a JSON list")
    else:
        labels = [line.strip() for line in text.split("\n") if line.strip()]
    check_labels(labels, where)
    return tuple(labels)


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
