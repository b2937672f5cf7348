"""Every ``keras.applications`` architecture (random init) converts through zoo's direct
emitter, with no tf2onnx fallback, and ONNX Runtime gives Keras's logits.

The default run exports one architecture per family (``REPRESENTATIVES``, slow); the other 32
are marked ``applications`` too and run with ``pytest -m applications`` (tests/conftest.py
leaves them out of any run whose marker expression does not name them). Logits, not
probabilities: random-init softmax is near uniform and would hide errors, so each model is
built with ``classifier_activation=None``.
"""

from __future__ import annotations

import gc
import resource

import numpy as np
import pytest

from zoo.sources.applications import ARCHITECTURES, REPRESENTATIVES

TOLERANCE = 1e-4
"""Max |ONNX - Keras| over max |Keras| (the logits)."""

PARAMETERS = [
    pytest.param(
        name,
        marks=[pytest.mark.slow] + ([] if name in REPRESENTATIVES else [pytest.mark.applications]),
    )
    for name in ARCHITECTURES
]


def inputs(architecture, batch: int = 2) -> np.ndarray:
    """Random pixels in the range the model takes: 0..255 for the models that normalise
    inside, [-1, 1] for the others (the range of ``tf`` preprocessing, near the others')."""
    low, high = (0, 255) if architecture.preprocess == "none" else (-1, 1)
    size = (batch, architecture.size, architecture.size, 3)
    return np.random.default_rng(0).uniform(low, high, size).astype(np.float32)


def calibrate_batch_normalization(keras, model, x: np.ndarray) -> None:
    """Every BatchNormalization's moving statistics set to those of its inputs on ``x``, as
    after training: random-init ones are an identity, which leaves the deepest models
    (EfficientNetV2M, L) chaotic, their logits ~1e9 and changed wholesale by float32 rounding,
    and would hide a wrong fold."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)


@pytest.mark.parametrize("name", PARAMETERS)
def test_every_architecture_converts_directly_to_keras_logits(name):
    import onnxruntime

    from zoo.exporters.convert import EMITTER, keras_to_onnx
    from zoo.sources.keras_model import import_keras

    keras = import_keras()
    architecture = ARCHITECTURES[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, classifier_activation=None)
    x = inputs(architecture)
    calibrate_batch_normalization(keras, model, x)
    expected = np.asarray(model(x, training=False))
    shape = (architecture.size, architecture.size, 3)
    conversion = keras_to_onnx(model, output_name="logits", input_shape=shape, check=False)
    assert (conversion.converter, conversion.unsupported_layers) == (EMITTER, ())
    del model
    keras.backend.clear_session()
    gc.collect()

    session = onnxruntime.InferenceSession(
        conversion.proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    del conversion
    (logits,) = session.run(None, {"image": x})
    difference = float(np.abs(logits - expected).max())
    scale = float(np.abs(expected).max())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"{name}: max |diff| {difference:.3g}, max |logit| {scale:.3g}, peak RSS {peak:.1f} GiB")
    assert logits.shape == expected.shape == (len(x), 1000)
    assert scale > 0
    assert difference <= TOLERANCE * scale
    top5 = np.argsort(-logits, axis=1)[:, :5]
    np.testing.assert_array_equal(top5, np.argsort(-expected, axis=1)[:, :5])
