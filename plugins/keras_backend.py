"""The ``keras`` backend: runs a model's ``keras.Model`` with ``model.predict``."""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.base.errors import BackendUnavailable
from zoo.model.spec import Backend, LoadOptions, ModelSpec, Runner
from zoo.sources.keras_model import build_keras_model


class KerasRunner(Runner):
    """``model.predict``; for a model that outputs logits, their softmax."""

    def __init__(self, model, outputs_logits: bool = False):
        self.model = model
        self.outputs_logits = outputs_logits

    def __call__(self, batch):
        import numpy as np  # here, not at the top: `zoo list` imports this plugin

        from zoo.runtime.scores import softmax

        outputs = np.asarray(self.model.predict(batch, verbose=0))
        return softmax(outputs).astype(np.float32) if self.outputs_logits else outputs


class KerasBackend(Backend):
    name = "keras"
    description = "Keras 3 (TensorFlow), model.predict"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> KerasRunner:
        if options.provider != "auto":
            raise BackendUnavailable(
                "the keras backend runs where TensorFlow puts it; --provider is for onnx"
            )
        model = build_keras_model(spec, weights, options.threads)
        return KerasRunner(model, outputs_logits=spec.output == "logits")


@hookimpl
def register_backends(register):
    register(KerasBackend())
