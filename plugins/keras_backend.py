"""The ``keras`` backend: runs a model's ``keras.Model`` with ``model.predict``."""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.errors import BackendUnavailable
from zoo.keras_model import build_keras_model
from zoo.specs import Backend, LoadOptions, ModelSpec, Runner


class KerasRunner(Runner):
    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        import numpy as np

        return np.asarray(self.model.predict(batch, verbose=0))


class KerasBackend(Backend):
    name = "keras"
    description = "Keras 3 (TensorFlow), model.predict"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> KerasRunner:
        if options.provider != "auto":
            raise BackendUnavailable(
                "the keras backend runs where TensorFlow puts it; --provider is for onnx"
            )
        return KerasRunner(build_keras_model(spec, weights, options.threads))


@hookimpl
def register_backends(register):
    register(KerasBackend())
