"""A user's own Keras model file (``.keras``, or a full model saved as legacy ``.h5``), read
and loaded, and what it says (``describe_classifier``: input size and channels, class count,
whether it ends in a softmax or in logits, whether it preprocesses its own pixels);
``zoo.sources.model_file`` adds what the user says (``KerasFileOptions``) to make it a
``ModelSpec``.

The file is read in two steps. ``read_config`` reads the architecture as JSON, without
TensorFlow, so that a directory, a truncated or foreign file, a ``Lambda`` layer the user has
not allowed and a custom class no module registers are each refused in one line before Keras
runs anything. ``KerasFile.load`` then loads it with Keras (``safe_mode`` on unless Lambda
layers were allowed) and checks that it is an image classifier: one image input, one output
that is a vector of class scores. The model loaded for that check is the one the first build
returns, so a command builds the file once.

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.base import jsonio
from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import own_temporaries
from zoo.base.printing import printable
from zoo.base.progress import note
from zoo.base.user_files import UserFile, open_user_file
from zoo.plugin.guard import import_user_module
from zoo.sources import keras_bounds, keras_rewrites
from zoo.sources.keras_rewrites import AUGMENTATION, layers

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

SPATIAL_ONLY = ("Resizing", "CenterCrop", "Cropping2D")
"""Layers that move or crop pixels without scaling their values: the search for a graph that
preprocesses its own pixels looks past them."""

INFERENCE_ONLY = (
    *AUGMENTATION,
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
)
"""Keras layers that compute nothing at inference (augmentation, regularisation): their
output is their input when a model is called with ``training=False``."""

IN_GRAPH_PREPROCESSING = ("Rescaling", "Normalization", "TrueDivide", "Divide", "Multiply")
"""A first operation that scales the pixels: the graph preprocesses its own input
(``Rescaling``, ``Normalization``, or the arithmetic ``keras.applications``'s
``preprocess_input`` records on a Keras tensor)."""


class KerasFileError(ZooError):
    """A Keras file zoo cannot take, or options that do not fit it."""


@dataclass(frozen=True)
class KerasFileOptions:
    """What the user says about a Keras file that the file does not."""

    labels: Path | None = None
    """One label per line, or a JSON list; None: class_0, class_1..."""
    preprocess: str | None = None
    """A registered preprocessor; None: ``none`` if the graph scales its own pixels, else
    refused."""
    input_size: tuple[int, int] | None = None
    """(height, width), for a file whose input takes any size."""
    name: str | None = None
    """The model's name; None: the file's stem."""
    custom_objects: tuple[str, ...] = ()
    """Modules imported before loading, which register the file's custom classes."""
    allow_lambda: bool = False
    """Load ``Lambda`` layers, which runs the code they hold (Keras's ``safe_mode`` off)."""


def read_config(path: Path) -> dict:
    """The file's architecture as Keras saved it (JSON), read without TensorFlow and within
    ``keras_bounds``; one line for a folder, a missing, truncated or foreign file, or an .h5 of
    weights only."""
    _refuse_folder(path)
    with open_user_file(path) as user_file:
        return _config_of(pinned_path(user_file), path)


def _refuse_folder(path: Path) -> None:
    if path.is_dir():  # a SavedModel folder is read by zoo.sources.saved_model instead
        raise KerasFileError(
            f"{path}: a folder, not a model file (.keras, .h5 or .onnx) nor a TensorFlow "
            "SavedModel (no saved_model.pb)"
        )


def pinned_path(user_file: UserFile) -> Path:
    """A path that names the very file ``user_file`` opened, whatever its name names now
    (``/proc/self/fd/N`` on Linux; elsewhere the path resolved once): the scan, the bounds
    and Keras all read what was opened."""
    proc = Path(f"/proc/self/fd/{user_file.fd}")
    return proc if proc.exists() else user_file.resolved


def _config_of(source: Path, path: Path) -> dict:
    """The config of the Keras file at ``source`` (``path``, as the user named it, names it
    in refusals), read as what its bytes say (an HDF5 file named ``.keras`` as HDF5), within
    ``keras_bounds``, its serialised objects' types checked."""
    label = printable(str(path))
    try:
        if file_format(source, path) == "zip":
            config = _keras_zip_config(source, label)
        else:
            config = _h5_config(source, label)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise KerasFileError(
            f"{path}: not a Keras model file zoo can read (truncated, corrupt or another "
            f"format: {describe_exception(error)})"
        ) from None
    check_objects(config, label)
    return config


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def file_format(path: Path, named: Path | None = None) -> str:
    """``zip`` (a Keras 3 ``.keras`` archive) or ``hdf5``, by the file's first bytes; a file
    that is neither is taken by its suffix (``named``'s, where ``path`` is a pinned path) and
    then refused as corrupt."""
    with open(path, "rb") as file:
        head = file.read(len(HDF5_SIGNATURE))
    if head.startswith(b"PK"):
        return "zip"
    if head == HDF5_SIGNATURE:
        return "hdf5"
    return "zip" if (named or path).suffix.lower() == ".keras" else "hdf5"


def _keras_zip_config(path: Path, label: str) -> dict:
    import h5py

    if not zipfile.is_zipfile(path):
        raise ValueError("not a zip archive")
    with zipfile.ZipFile(path) as archive:
        keras_bounds.check_archive(archive, label)
        text = keras_bounds.read_member(archive, "config.json", keras_bounds.CONFIG, label)
        config = keras_bounds.parse_config(text, label)
        with archive.open("model.weights.h5") as member, h5py.File(member, "r") as weights:
            keras_bounds.check_weights(weights, label)
    return config


def _h5_config(path: Path, label: str) -> dict:
    import h5py

    with h5py.File(path, "r") as file:
        text = file.attrs.get("model_config")  # HDF5 attributes are stored whole: no bomb
        if text is None:
            raise KerasFileError(
                f"{label}: holds weights only, not a model; save the whole model with "
                "model.save('model.keras')"
            )
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str):
            raise KerasFileError(
                f"{label}: its model_config attribute is {type(text).__name__}, not the JSON "
                "text Keras writes"
            )
        config = keras_bounds.parse_config(text, label)
        keras_bounds.check_weights(file, label)
    return config


FIELD_TYPES = {
    "class_name": (str,),
    "module": (str, type(None)),
    "registered_name": (str, type(None)),
}
"""The fields of a serialised Keras object that zoo reads, and the JSON types they may have."""


def check_objects(config: dict, label: str) -> None:
    """Each serialised object's ``class_name``, ``module`` and ``registered_name`` of the JSON
    type Keras writes: anything else is one line, not a crash in zoo's own reading."""
    for item in _model_layers(config):
        for key, types in FIELD_TYPES.items():
            if key in item and not isinstance(item[key], types):
                name = item.get("class_name")
                where = repr(name) if isinstance(name, str) else "an object"
                raise KerasFileError(
                    f"{label}: {where} in its config has a {key!r} of JSON "
                    f"{_json_type(item[key])}, not a string; not a config Keras wrote"
                )


def _json_type(value: Any) -> str:
    names = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _model_layers(config: dict):
    """The serialised objects of the model itself: not its ``compile_config`` (the loss and
    optimizer, which zoo never loads)."""
    return layers({key: value for key, value in config.items() if key != "compile_config"})


def _inner_name(item: dict) -> str:
    inner = item.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    return name if isinstance(name, str) and name else "?"


def is_lambda(item: dict) -> bool:
    """Whether a serialised object is a ``Lambda`` layer however it is spelled: ``Lambda``,
    or ``layers.Lambda`` under ``module: keras`` (Keras joins the two)."""
    path = f"{item.get('module') or ''}.{item.get('class_name') or ''}"
    return path.rsplit(".", 1)[-1] == "Lambda"


def lambda_layers(config: dict) -> list[str]:
    """The names of the Lambda layers; where there is none, a Python lambda serialised
    elsewhere (an activation: ``__lambda__``) is named as one."""
    items = list(_model_layers(config))
    names = [_inner_name(item) for item in items if is_lambda(item)]
    if not names and any(item.get("class_name") == "__lambda__" for item in items):
        return ["(a Python lambda)"]
    return names


def custom_classes(config: dict) -> dict[str, str]:
    """Registered name (``acme>Gain``) -> the name of the layer that uses it, for every class
    the file uses that Keras does not define."""
    found = {}
    for item in _model_layers(config):
        registered = item.get("registered_name")
        module = item.get("module") or ""
        if registered and not module.startswith("keras"):
            found.setdefault(registered, _inner_name(item))
    return found


@dataclass
class KerasFile:
    """A Keras file checked and loaded: what ``KerasFile.open`` makes of it."""

    path: Path
    sha256: str
    options: KerasFileOptions
    config: dict = field(repr=False, default_factory=dict)
    """The architecture as the file holds it (``read_config``)."""
    model: Any = field(repr=False, default=None)
    """The loaded model, until the first build takes it."""
    rewrites: tuple[str, ...] = ()
    """The ``keras_rewrites`` the config needed before Keras would load it, by name."""
    graph: Classifier | None = None
    """What ``describe_classifier`` found, which ``build`` adapts the model to (``adapt``)."""

    pinned: Path | None = field(repr=False, default=None)
    """While ``open`` loads it: the path naming the very file opened (``pinned_path``)."""

    @classmethod
    def open(cls, path: Path, options: KerasFileOptions) -> KerasFile:
        """The file opened once: its config, its hash and Keras's load all read that one
        open file, and a file changed meanwhile is refused (``check_unchanged``)."""
        path = Path(path)
        _refuse_folder(path)
        with open_user_file(path) as user_file:
            pinned = pinned_path(user_file)
            config = _config_of(pinned, path)
            check_loadable(path, config, options)
            keras_file = cls(user_file.resolved, descriptor_digest(user_file), options, config)
            keras_file.pinned = pinned
            try:
                keras_file.model = keras_file.load()
            finally:
                keras_file.pinned = None
            user_file.check_unchanged()
        return keras_file

    def _format(self) -> str:
        return file_format(self.pinned or self.path, self.path)

    @own_temporaries()  # Keras extracts a file's assets into a temporary folder: zoo's
    def load(self):
        """The model with the file's weights, loaded by Keras: as saved, or, where Keras
        refuses the file as saved, from its config rewritten (``keras_rewrites``); a model
        saved with a fixed batch size is reloaded with the batch open."""
        from zoo.sources.keras_model import import_keras

        import_keras()
        import_custom_objects(self.options.custom_objects)
        try:
            model, applied = self._keras_load(None), []
        except Exception as error:  # whatever the file holds: a user's error, in one line
            config, applied = self._rewritten(keras_rewrites.REWRITES, error)
            model = self._load_rewritten(config, applied)
        if _fixed_batch(model):
            table = tuple(r for r in keras_rewrites.REWRITES if r.name in applied)
            config = copy.deepcopy(self.config)
            table = (*table, keras_rewrites.FIXED_BATCH)
            if keras_rewrites.FIXED_BATCH.name in keras_rewrites.rewrite(
                config, self._format(), table
            ):
                applied = [*applied, keras_rewrites.FIXED_BATCH.name]
                model = self._load_rewritten(config, applied)
        self.rewrites = tuple(applied)
        return model

    def _rewritten(self, table: tuple, error: Exception | None = None) -> tuple[dict, list[str]]:
        config = copy.deepcopy(self.config)
        try:
            applied = keras_rewrites.rewrite(config, self._format(), table)
        except keras_rewrites.RewriteRefused as refused:
            raise KerasFileError(f"{self.path}: Keras cannot load it: {refused}") from None
        except (TypeError, AttributeError, KeyError, ValueError) as odd:  # the file's JSON
            raise KerasFileError(
                f"{self.path}: Keras cannot load it ({keras_complaint(error)}), and its config "
                f"is not of a form zoo's rewrites read ({describe_exception(odd)})"
            ) from None
        if not applied:
            raise KerasFileError(
                f"{self.path}: Keras cannot load it ({keras_complaint(error)}), and none of "
                "zoo's rewrites of older Keras forms applies"
            ) from None
        return config, applied

    def _load_rewritten(self, config: dict, applied: list[str]):
        try:
            return self._keras_load(config)
        except Exception as error:  # whatever the file holds: a user's error, in one line
            raise KerasFileError(
                f"{self.path}: Keras cannot load it, even after zoo's rewrites "
                f"{', '.join(applied)} ({keras_complaint(error)})"
            ) from None

    def _keras_load(self, config: dict | None):
        """Keras's ``load_model`` on the file, or on a copy holding ``config`` instead of its
        own; the file's format is read from its bytes, so an HDF5 file named ``.keras`` is
        given to Keras under a name it loads as HDF5."""
        import keras

        from zoo.sources.keras_model import quiet_tensorflow

        fmt = self._format()
        suffix = ".keras" if fmt == "zip" else ".h5"
        source = self.pinned or self.path
        with tempfile.TemporaryDirectory(prefix="zoo-keras-") as folder:
            path = Path(folder, "model" + suffix)
            if config is not None:
                _write_with_config(source, fmt, config, path)
            elif source == self.path and self.path.suffix.lower() in (
                (".keras",) if fmt == "zip" else (".h5", ".hdf5")
            ):
                path = self.path
            else:  # Keras goes by the suffix: the opened file under a name it loads
                path.symlink_to(source)
            with quiet_tensorflow(), warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                model = keras.saving.load_model(
                    path, compile=False, safe_mode=not self.options.allow_lambda
                )
        self._say(warned)
        return model

    def _say(self, warned: list) -> None:
        """Keras's warnings while loading, in one zoo line rather than its raw
        ``UserWarning`` lines (each with a source line of Keras's own)."""
        said = list(dict.fromkeys(str(item.message).strip().split("\n")[0] for item in warned))
        if said:
            more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
            note(f"zoo: warning: {printable(str(self.path))}: Keras, loading it: {said[0]}{more}")

    def build(self, weights: str | None):
        """``ModelSpec.build``: the file's own weights when ``weights`` is the file itself,
        seeded random init for None (the same architecture, new weights), or the file's
        architecture with another weights file."""
        import keras

        model, self.model = self.model or self.load(), None
        if self.graph is None:  # a kept file (zoo import), built from its card
            self.graph = describe_classifier(model, self.path)
        if weights is None:
            model = keras.models.clone_model(model)
        elif Path(weights).resolve() != self.path:
            try:
                model.load_weights(weights)
            except Exception as error:  # whatever the weights file holds: one line
                raise KerasFileError(
                    f"{weights}: Keras cannot load these weights into {self.path.name} "
                    f"({keras_complaint(error)})"
                ) from None
        return adapt(model, self.graph)


def descriptor_digest(user_file: UserFile) -> str:
    """The sha256 of the open file, read from its descriptor."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(user_file.fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def copy_checked(source: Path, target: Path, sha256: str) -> None:
    """The user's file ``source`` copied to ``target`` from one descriptor, no further than its
    size when opened, and refused unless it still hashes to ``sha256`` (what was loaded): a
    file swapped meanwhile, for another or for a link to ``/dev/zero``, is one line, never a
    disk filled."""
    with open_user_file(source) as user_file, open(target, "wb") as out:
        digest, offset, size = hashlib.sha256(), 0, user_file.identity.size
        while offset < size and (
            chunk := os.pread(user_file.fd, min(1 << 20, size - offset), offset)
        ):
            digest.update(chunk)
            out.write(chunk)
            offset += len(chunk)
        user_file.check_unchanged()
    if digest.hexdigest() != sha256:
        raise KerasFileError(
            f"{printable(str(source))}: changed while zoo read it (written to, or replaced); "
            "try again once nothing is writing it"
        )


def _fixed_batch(model) -> bool:
    inputs = getattr(model, "inputs", None) or []
    return any(tensor.shape and tensor.shape[0] is not None for tensor in inputs)


def _write_with_config(source: Path, fmt: str, config: dict, target: Path) -> None:
    """A copy of the Keras file ``source`` with ``config`` as its architecture."""
    text = jsonio.dumps_for_keras(config)
    if fmt == "zip":
        with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
            for member in old.infolist():
                data = text.encode() if member.filename == "config.json" else old.read(member)
                new.writestr(member, data)
        return
    import h5py

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as file:
        file.attrs["model_config"] = text


def keras_complaint(error: Exception | None) -> str:
    """Keras's refusal in one line: the layer and what it rejects, where Keras names them."""
    if error is None:
        return "no error"
    text = str(error)
    found = re.search(r"deserializing class '(\w+)' using config=\{.*?'name': '([^']*)'", text)
    reason = re.findall(r"Exception encountered: (.+)", text)
    if found and reason:
        return f"layer {found.group(2)!r} ({found.group(1)}): {reason[-1].strip()}"
    weights = re.match(
        r"A total of (\d+) objects could not be loaded.*?:\n\n(.+?)(\n|$)", text, re.S
    )
    if weights:  # Keras's reason is on the third line
        return f"{weights.group(1)} of its layers' weights do not load: {weights.group(2).strip()}"
    return describe_exception(error)


def check_loadable(path: Path, config: dict, options: KerasFileOptions) -> None:
    """Lambda layers the user has not allowed, and custom classes no module registers, are
    refused before Keras runs anything."""
    lambdas = lambda_layers(config)
    if lambdas and not options.allow_lambda:
        raise KerasFileError(
            f"{path}: Lambda layer {', '.join(map(repr, lambdas))} holds Python code that "
            "loading would run; if you trust the file, pass --allow-lambda"
        )
    if lambdas:
        print(
            f"zoo: warning: {path}: loading runs the code in Lambda layer "
            f"{', '.join(map(repr, lambdas))} (--allow-lambda)",
            file=sys.stderr,
        )
    custom = custom_classes(config)
    if not custom:
        return
    from zoo.sources.keras_model import import_keras

    keras = import_keras()
    import_custom_objects(options.custom_objects)
    missing = {
        registered: layer
        for registered, layer in custom.items()
        if keras.saving.get_registered_object(registered) is None
    }
    if missing:
        named = ", ".join(f"{name!r} (layer {layer!r})" for name, layer in missing.items())
        raise KerasFileError(
            f"{path}: uses the custom class {named}, which no loaded module registers; pass "
            "--custom-objects MODULE, the module that defines it with "
            "@keras.saving.register_keras_serializable"
        )


def import_custom_objects(modules: tuple[str, ...]) -> None:
    """Import each module (from the current folder too), which registers its Keras classes;
    guarded as a plugin is (``import_user_module``): a failure, ``SystemExit`` or a print is
    one line naming the module."""
    if modules and "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    for module in modules:
        import_user_module(module, "--custom-objects")


@dataclass(frozen=True)
class Classifier:
    """What the loaded graph says about its input and output."""

    size: tuple[int, int] | None
    """(height, width); None where the file takes any size."""
    classes: int
    """Class scores zoo gives: 2 for a one-sigmoid binary classifier."""
    output: str
    """``probabilities`` (a softmax, or a sigmoid made two classes) or ``logits``."""
    preprocesses_itself: bool
    channels: int = 3
    """3 (RGB) or 1 (grayscale)."""
    flat: bool = False
    """The input is (height, width), no channel axis: fed through a reshape of (h, w, 1)."""
    binary: bool = False
    """One sigmoid unit, the probability of class 1: scores ``[1 - p, p]``."""


TAKES = (
    "zoo takes image classifiers: one (height, width, 3) RGB, (height, width, 1) or (height, "
    "width) grayscale input, one class-score output"
)


def describe_classifier(model, path: Path) -> Classifier:
    """Refuse, in one line, a model that is not an image classifier (zoo takes one image
    input, RGB or grayscale, and one output, a vector of class scores or one sigmoid unit)."""
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1:
        raise KerasFileError(f"{path}: the model takes {len(inputs)} inputs; {TAKES}")
    if len(outputs) != 1:
        raise KerasFileError(f"{path}: the model has {len(outputs)} outputs; {TAKES}")
    shape = tuple(inputs[0].shape)
    if len(shape) == 4 and shape[-1] not in (1, 3):
        raise KerasFileError(f"{path}: its input has {shape[-1]} channels ({shape[1:]}); {TAKES}")
    if len(shape) not in (3, 4):
        raise KerasFileError(f"{path}: its input has shape {shape[1:]}, not an image; {TAKES}")
    out_shape = tuple(outputs[0].shape)
    activation = _activation_name(_output_operation(model))
    units = out_shape[1] if len(out_shape) == 2 else None
    if activation == "sigmoid" and units is not None and units > 1:
        raise KerasFileError(
            f"{path}: its output is {units} sigmoid units, a multi-label model (each class "
            "scored on its own); zoo takes classifiers that pick one class: a softmax, logits "
            "or one sigmoid unit"
        )
    binary = activation == "sigmoid" and units == 1
    if not binary and ((units or 0) < 2 or activation not in ("softmax", "linear")):
        what = f"shape {out_shape[1:]}" + (f" after {activation}" if activation else "")
        raise KerasFileError(
            f"{path}: its output ({what}) is not a vector of class scores (a regression or a "
            f"feature map?); {TAKES}, ending in a softmax, logits or one sigmoid unit"
        )
    size = (shape[1], shape[2]) if None not in shape[1:3] else None
    return Classifier(
        size,
        2 if binary else int(units),
        "logits" if activation == "linear" else "probabilities",
        _first_operation(model) in IN_GRAPH_PREPROCESSING,
        channels=1 if len(shape) == 3 else shape[-1],
        flat=len(shape) == 3,
        binary=binary,
    )


def adapt(model, graph: Classifier):
    """The model as zoo runs it: a flat (height, width) input fed from (height, width, 1)
    through a ``Reshape``, and a one-sigmoid head followed by a fixed ``Dense`` making
    ``[1 - p, p]`` (kernel ``[[-1, 1]]``, bias ``[1, 0]``); any other model as it is."""
    if not graph.flat and not graph.binary:
        return model
    import keras
    import numpy as np

    shape = tuple(model.inputs[0].shape[1:])
    inputs = keras.Input((*shape, 1) if graph.flat else shape, name="image")
    x = keras.layers.Reshape(shape, name="zoo_drop_channel")(inputs) if graph.flat else inputs
    x = model(x)
    if graph.binary:
        scores = keras.layers.Dense(2, trainable=False, name="zoo_binary_scores")
        x = scores(x)
        scores.set_weights([np.array([[-1.0, 1.0]], np.float32), np.array([1.0, 0.0], np.float32)])
    return keras.Model(inputs, x, name=model.name)


def _output_operation(model):
    """The layer that computes the model's output, inside nested models."""
    import keras

    operation = model.outputs[0]._keras_history.operation
    while isinstance(operation, keras.Model):
        operation = operation.outputs[0]._keras_history.operation
    return operation


def _activation_name(layer) -> str | None:
    """``softmax``, ``linear``, or the name of another activation the layer ends in."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "scores_activation", None) or getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def _first_operation(model) -> str | None:
    """The class name of the first operation on the input that computes something,
    inference-only and spatial-only layers skipped and nested models entered."""
    import keras

    for operation in getattr(model, "operations", model.layers):
        name = type(operation).__name__
        if name == "InputLayer" or name in INFERENCE_ONLY or name in SPATIAL_ONLY:
            continue
        if isinstance(operation, keras.Model):
            return _first_operation(operation)
        return name
    return None
