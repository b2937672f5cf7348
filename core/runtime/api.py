"""The Python API: ``zoo.load(name)`` gives a ``Model`` that classifies images."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.base.errors import BackendUnavailable, ZooError, describe_exception
from zoo.base.progress import status
from zoo.model.spec import LoadOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.model import Model
from zoo.runtime.onnx_file import load_onnx
from zoo.sources.keras_file import KerasFileError, KerasFileOptions
from zoo.sources.resolver import is_onnx_file, register_reference
from zoo.sources.weights import resolve_weights


def load(
    name: str | os.PathLike,
    backend: str = "keras",
    weights: str | os.PathLike = "imagenet",
    provider: str = "auto",
    threads: int = 0,
    keras_file: KerasFileOptions | None = None,
    varying_batches: bool = False,
    precision: str | None = None,
) -> Model:
    """Load a registered model (by name or alias) or a Keras model file into a backend, or an
    exported .onnx file.

    ``weights``: ``"imagenet"`` (Keras's cache, downloaded when missing), ``"none"`` (seeded
    random init) or the path of a weights file; a .onnx file carries its own. ``provider``:
    the device or ONNX Runtime execution provider (``"auto"``, ``"cpu"``, ``"cuda"``).
    ``threads``: CPU threads one inference may use (0: the backend's default, all cores).
    ``keras_file``: what a ``.keras``/``.h5`` file given as ``name`` does not say (labels,
    preprocessing...), as the CLI's options say it. ``varying_batches``: the model will see
    batches of many sizes, as a server's does (ONNX Runtime then plans no memory pattern per
    shape: see ``LoadOptions``). ``precision``: what the runtime computes in (``"bf16"`` on
    ``backend="openvino"``...; None: float32, or a file's own); the loaded model's
    ``precision`` is what the runtime reports it runs at.
    """
    options = LoadOptions(provider, threads, varying_batches, precision)
    if is_onnx_file(name):
        if backend in ("keras", "onnx"):  # a file runs on ONNX Runtime unless told otherwise
            return checked_precision(load_onnx(name, provider, threads, varying_batches), options)
        runner = get_registry().backend(backend).load_file(Path(name), options)
        card = runner.card
        model = Model(
            card.model, card.host_input, runner, backend, str(name), runner.precision, card
        )
        return checked_precision(model, options)
    read_reference(name, keras_file or KerasFileOptions())
    registry = get_registry()
    spec = registry.model(name)
    config = registry.input_config(spec)
    runtime = registry.backend(backend)
    weights_path = resolve_weights(spec, weights)
    status(f"loading {spec.name} on {backend} ({weights_path or 'random init'})")
    runner = runtime.load(spec, weights_path, options)
    source = str(weights_path) if weights_path else "none"
    model = Model(spec.name, config, runner, backend, source, getattr(runner, "precision", "fp32"))
    return checked_precision(model, options)


def read_reference(name: str | os.PathLike, options: KerasFileOptions) -> None:
    """``register_reference``: a user's file read and checked. Whatever reading that file
    raises is a ``ZooError`` (the cause chained), so a caller of ``zoo.load`` need catch
    nothing else; the CLI's "unexpected error" still names such a failure as zoo's bug."""
    try:
        register_reference(str(name), options)
    except ZooError:
        raise
    except (AttributeError, RecursionError, TypeError, ValueError, KeyError, OSError) as error:
        raise KerasFileError(f"{name}: cannot read it ({describe_exception(error)})") from error


def checked_precision(model: Model, options: LoadOptions) -> Model:
    """``model``, if it computes in the precision asked for: a backend that ignores
    ``LoadOptions.precision`` must not pass for one that honoured it."""
    if options.precision not in (None, model.precision):
        raise BackendUnavailable(
            f"{model.name} on {model.backend} computes in {model.precision}, "
            f"not the {options.precision} asked for"
        )
    return model
