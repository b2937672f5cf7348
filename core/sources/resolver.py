"""Model references: what a command's MODEL argument may be, told apart in this one module.

A reference is a registered name or alias (a built-in, a plugin's, a trained or imported
model), a ``.onnx`` file zoo exported (a path or a URI; it carries its own card, read by
``zoo.load``), or a Keras file (``.keras``, ``.h5``), which ``register_reference`` checks,
loads and registers under its name with the reference itself as an alias: every command and
``zoo.load`` then finds it with ``registry.model(reference)``, as any other model. A command
that needs the model as ONNX (``--engine ray``) asks ``onnx_file``, which gives the file
itself or the registered model's verified export. No other module reads a reference's suffix.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from zoo.base.progress import note
from zoo.model.spec import ModelSpec
from zoo.plugin.registry import get_registry
from zoo.sources.export_cache import cached_export
from zoo.sources.keras_file import KerasFileError, KerasFileOptions, read_config
from zoo.sources.model_file import is_keras_file, keras_file_spec, labels_note
from zoo.sources.weights import resolve_weights

NO_OPTIONS = KerasFileOptions()
BUILD_ONLY = KerasFileOptions(preprocess="none")
KERAS_FILE_PLUGIN = "keras-file"
"""The owner the registry records for a Keras file given on the command line."""


def target(reference: str) -> str:
    """The model in ``NAME=MODEL`` (``zoo serve``'s form), or the reference itself."""
    _, given, model = str(reference).partition("=")
    return model if given and not Path(reference).exists() else str(reference)


def is_onnx_file(reference: str | os.PathLike) -> bool:
    """Whether ``reference`` names an exported ``.onnx`` file (a path or a URI) rather than a
    registered model or a Keras file."""
    return str(reference).lower().endswith(".onnx")


def onnx_file(reference: str | os.PathLike, weights: str = "imagenet") -> str:
    """The ``.onnx`` file (path or URI) that runs ``reference`` on ONNX Runtime: the file
    itself, or a model's verified export from zoo's cache, made on first use (which needs
    TensorFlow here); a Keras file not registered yet is registered first, as every command's
    reference is."""
    if is_onnx_file(reference):
        return str(reference)
    register_reference(str(reference))
    spec = get_registry().model(str(reference))
    return str(cached_export(spec, resolve_weights(spec, weights)))


def register_reference(reference: str, options: KerasFileOptions = NO_OPTIONS) -> None:
    """Make ``reference`` findable with ``registry.model(reference)``: a Keras file is loaded,
    checked and registered; a folder (or a SavedModel's ``saved_model.pb``) is refused in one
    line; anything else is left to the registry (a name) or to ``zoo.load`` (a .onnx file)."""
    reference = target(reference)
    if is_onnx_file(reference):
        return
    registry = get_registry()
    key = reference.lower()
    if key in registry.models or key in registry.aliases:
        return
    path = Path(reference).expanduser()
    if is_keras_file(reference):
        spec = keras_file_model(path, options)
        _add(spec, reference)
    elif path.is_dir():
        read_config(path)  # names what the folder is, in one line
    elif path.name == "saved_model.pb" and path.is_file():
        raise KerasFileError(
            f"{reference}: a file of a TensorFlow SavedModel; give its folder ({path.parent})"
        )


def keras_file_model(path: Path, options: KerasFileOptions) -> ModelSpec:
    """The ``ModelSpec`` of a Keras file, with the note for labels it had to make up."""
    spec = keras_file_spec(path, options, get_registry().preprocessors)
    if line := labels_note(spec, options):
        note(line)
    return spec


def model_to_build(reference: str) -> ModelSpec:
    """The model ``reference`` names, to build (a trained model's base): a registered one, or
    a Keras file, loaded with the settings that change no weights (its pixels are the trained
    model's business)."""
    if not is_keras_file(reference):
        return get_registry().model(reference)
    return keras_file_spec(Path(reference), BUILD_ONLY, get_registry().preprocessors)


def _add(spec: ModelSpec, reference: str) -> None:
    registry = get_registry()
    taken = registry.aliases.get(spec.name, spec.name)
    if taken in registry.models:
        owner = registry.owners[("model", taken)]
        raise KerasFileError(
            f"{reference}: its name {spec.name!r} is taken by model {taken!r} (plugin "
            f"{owner!r}); pass --name"
        )
    spec = dataclasses.replace(spec, aliases=(reference.lower(),))
    registry.add("model", spec, KERAS_FILE_PLUGIN)
