"""Build a registered model's ``keras.Model``: the one place zoo imports Keras and TensorFlow.

The Keras backend, the exporter and the verifier all call ``build_keras_model``, so seeding
random-init weights, mapping a bad weights file to ``WeightsUnavailable`` and keeping
TensorFlow's start-up banners off the terminal happen the same way everywhere.
``keras_application`` is the public ``build`` for any ``keras.applications`` architecture.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.base.errors import (
    BackendUnavailable,
    PluginError,
    WeightsUnavailable,
    ZooError,
    describe_exception,
)
from zoo.base.stdio import filtered_stderr
from zoo.model.spec import ModelSpec
from zoo.plugin.registry import get_registry

RANDOM_INIT_SEED = 0
"""``--weights none`` builds with this seed, so a random-init model is the same every run."""

# What TensorFlow's C++ runtime prints on import and device set-up, whatever its log level:
# banners, and on a machine without a GPU, the failed CUDA probe (TensorFlow then runs on CPU).
_STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations|cudart_stub|"
    r"Could not find cuda drivers|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TensorFlow binary is optimized|"
    r"rebuild TensorFlow with the appropriate compiler flags|TF-TRT Warning|"
    r"failed call to cuInit"
)


def quiet_tensorflow():
    """While TensorFlow starts up: its banners stay off the terminal, anything else passes."""
    return filtered_stderr(_STARTUP_NOISE)


def import_keras():
    """Import Keras (and TensorFlow) quietly; a missing install is a one-line error."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_tensorflow():
            import keras
    except ImportError as error:
        raise BackendUnavailable(
            f"Keras models need TensorFlow ({describe_exception(error)}); "
            "install it with: pip install 'zoo[keras]'"
        ) from None
    return keras


def build_keras_model(spec: ModelSpec, weights: Path | None, threads: int = 0):
    """``spec``'s ``keras.Model`` with a weights file, or seeded random init for ``None``.

    ``threads``: limit TensorFlow's thread pools (0: its default); only possible before
    TensorFlow's runtime starts in this process.
    """
    keras = import_keras()
    if threads:
        _limit_threads(threads)
    if weights is None:
        keras.utils.set_random_seed(RANDOM_INIT_SEED)
    try:
        with quiet_tensorflow():  # the first model built sets up TensorFlow's devices
            model = spec.build(str(weights) if weights else None)
    except ZooError:
        raise
    except (ValueError, OSError, KeyError) as error:
        if weights is None:
            raise _build_failed(spec, error) from None
        raise WeightsUnavailable(
            f"cannot load {weights} into {spec.name}: {describe_exception(error)}"
        ) from None
    except Exception as error:  # a plugin's bug: say whose, in one line
        raise _build_failed(spec, error) from None
    _check_input_size(spec, model)
    return model


def _check_input_size(spec: ModelSpec, model) -> None:
    """Refuse a spec whose input size is not its graph's (a bundle card edited by hand, a
    plugin's typo) before any image is resized to it: the answers would be wrong, or the
    resize would take all the memory there is."""
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 4):
        return  # several inputs, or a graph that takes any size
    graph = (shape[1], shape[2])  # (height, width), as input_size
    if None not in graph and graph != tuple(spec.input_size):
        owner = get_registry().owners.get(("model", spec.name), "an unregistered plugin")
        raise PluginError(
            f"model {spec.name!r} (plugin {owner!r}) declares input_size "
            f"{tuple(spec.input_size)}, but its graph takes {graph} (height, width)"
        )


def _build_failed(spec: ModelSpec, error: Exception) -> PluginError:
    owner = get_registry().owners.get(("model", spec.name), "an unregistered plugin")
    return PluginError(
        f"plugin {owner!r}: model {spec.name!r} failed to build: {describe_exception(error)}"
    )


def keras_application(factory: str, **options: Any) -> Callable[[str | None], Any]:
    """A ``ModelSpec.build`` for ``keras.applications.<factory>`` (imports Keras when called).

    ``options`` go to the factory as they are, e.g. ``alpha=0.5`` for MobileNet or
    ``input_shape=(260, 260, 3)``: ``keras_application("EfficientNetB2")``.
    """

    def build(weights: str | None):
        return getattr(import_keras().applications, factory)(weights=weights, **options)

    build.__qualname__ = f"keras.applications.{factory}"
    return build


def _limit_threads(threads: int) -> None:
    """TensorFlow's thread pools are made once, when its runtime starts: set them before."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            raise BackendUnavailable(
                "TensorFlow has already started in this process with other thread settings; "
                f"cannot limit it to {threads} threads now"
            ) from None
