"""A Keras 2 SavedModel folder, what ``model.save("my_model")`` wrote before Keras 3
(``saved_model.pb``, ``keras_metadata.pb``, ``variables/``), as the Keras file it holds.

Keras 3 loads such a folder only as an opaque ``TFSMLayer``; ``tf_keras``, the Keras 2 line
(the ``savedmodel`` extra), loads it as the Keras model it is. zoo has it save that model as a
legacy ``.h5`` file once, in its cache (``$ZOO_HOME/saved-models``, keyed by the folder's
contents, so that every later command, and ``zoo verify``, reads the very same file), and then
reads that file as any Keras 2 ``.h5`` (its rewrites included): the model Keras 3 loads from
it is the reference an export is verified against. A SavedModel with no Keras metadata holds no
Keras model to verify against, and is refused.

TensorFlow and tf_keras are imported inside the function that converts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import atomic_path
from zoo.base.paths import zoo_home

KERAS_METADATA = "keras_metadata.pb"


class SavedModelError(ZooError):
    """A SavedModel folder zoo cannot read as a Keras model."""


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def as_keras_file(folder: Path) -> Path:
    """The legacy ``.h5`` file of the Keras 2 SavedModel ``folder``, made once and kept in
    zoo's cache; one line for a SavedModel with no Keras metadata or without ``tf_keras``."""
    if not (folder / KERAS_METADATA).is_file():
        raise SavedModelError(
            f"{folder}: a TensorFlow SavedModel with no Keras metadata ({KERAS_METADATA}), so "
            "no Keras model to verify an export against; export it with tf2onnx "
            "(python -m tf2onnx.convert --saved-model DIR) or save it from Keras as .keras"
        )
    target = zoo_home() / "saved-models" / f"{folder_digest(folder)}.h5"
    if not target.is_file():
        _convert(folder, target)
    return target


def folder_digest(folder: Path) -> str:
    """The sha256 of the folder's files: their paths and contents, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _convert(folder: Path, target: Path) -> None:
    try:
        import tf_keras
    except ImportError:
        raise SavedModelError(
            f"{folder}: a Keras 2 SavedModel folder; reading it takes tf_keras, the Keras 2 "
            "line: pip install 'zoo[savedmodel]' (or tf-keras matching your TensorFlow)"
        ) from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        model = tf_keras.models.load_model(folder, compile=False)
    except Exception as error:  # whatever the folder holds: the user's, in one line
        raise SavedModelError(
            f"{folder}: tf_keras cannot load it ({describe_exception(error)})"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        model.save(temporary, save_format="h5")
