"""The ``keras`` backend: runs a model's ``keras.Model`` with ``model.predict``."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from zoo import hookimpl
from zoo.errors import BackendUnavailable, WeightsUnavailable
from zoo.plugin_manager import describe_exception
from zoo.specs import Backend, ModelSpec, Runner
from zoo.stdio import filtered_stderr

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
            f"the keras backend needs TensorFlow ({describe_exception(error)}); "
            "install it with: pip install 'zoo[keras]'"
        ) from None
    return keras


class KerasRunner(Runner):
    def __init__(self, model):
        self.model = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(batch, verbose=0))


class KerasBackend(Backend):
    name = "keras"
    description = "Keras 3 (TensorFlow), model.predict"

    def load(
        self, spec: ModelSpec, weights: Path | None, provider: str = "auto", threads: int = 0
    ) -> KerasRunner:
        if provider != "auto":
            raise BackendUnavailable(
                "the keras backend runs where TensorFlow puts it; --provider is for onnx"
            )
        keras = import_keras()
        if threads:
            _limit_threads(threads)
        if weights is None:
            keras.utils.set_random_seed(RANDOM_INIT_SEED)
        try:
            with quiet_tensorflow():  # the first model built sets up TensorFlow's devices
                return KerasRunner(spec.build(str(weights) if weights else None))
        except (ValueError, OSError, KeyError) as error:
            if weights is None:
                raise
            raise WeightsUnavailable(
                f"cannot load {weights} into {spec.name}: {describe_exception(error)}"
            ) from None


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


@hookimpl
def register_backends(register):
    register(KerasBackend())
