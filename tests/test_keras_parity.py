"""zoo's NumPy pipeline equals the tutorial's Keras code, model by model."""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from zoo.plugin.registry import get_registry
from zoo.runtime.preprocessing import preprocess
from zoo.sources.keras_model import import_keras

pytestmark = pytest.mark.slow

# The tutorial's module for each model: keras.applications.<family>.preprocess_input.
FAMILIES = {
    "vgg16": "vgg16",
    "resnet50": "resnet50",
    "inception_v3": "inception_v3",
    "mobilenet": "mobilenet",
}


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def random_pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


@pytest.mark.parametrize("model", FAMILIES)
def test_preprocessing_equals_keras(keras, model):
    spec = get_registry().model(model)
    pixels = random_pixels((4, *spec.input_size, 3))
    family = getattr(keras.applications, FAMILIES[model])
    expected = family.preprocess_input(pixels.copy())
    actual = preprocess(pixels, get_registry().preprocessor(spec))
    assert actual.dtype == np.float32
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_torch_mode_equals_keras(keras):
    from keras.src.applications import imagenet_utils

    pixels = random_pixels((2, 8, 8, 3))
    expected = imagenet_utils.preprocess_input(pixels.copy(), mode="torch")
    actual = preprocess(pixels, get_registry().preprocessors["torch"])
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_preprocessing_does_not_modify_its_input():
    pixels = random_pixels((1, 4, 4, 3))
    before = pixels.copy()
    for spec in get_registry().preprocessors.values():
        preprocess(pixels, spec)
    np.testing.assert_array_equal(pixels, before)


def tutorial_top5(keras, keras_model, model, image_path):
    """The classic walk-through, verbatim: load_img, img_to_array, expand_dims,
    preprocess_input, model.predict, decode_predictions."""
    family = getattr(keras.applications, FAMILIES[model])
    height, width = keras_model.input_shape[1:3]
    img = keras.utils.load_img(image_path, target_size=(height, width))
    x = keras.utils.img_to_array(img)
    x = np.expand_dims(x, axis=0)
    x = family.preprocess_input(x)
    preds = keras_model.predict(x, verbose=0)
    return family.decode_predictions(preds, top=5)[0]


@pytest.mark.parametrize("model", FAMILIES)
def test_predict_equals_the_tutorial(keras, model, photo, keras_home):
    loaded = zoo.load(model, weights="none")
    expected = tutorial_top5(keras, loaded.runner.model, model, str(photo))
    actual = loaded.predict(photo, top=5)
    assert [(p.class_id, p.label) for p in actual] == [(c, label) for c, label, _ in expected]
    np.testing.assert_allclose([p.score for p in actual], [s for *_, s in expected], rtol=1e-6)


def test_random_init_is_deterministic(photo):
    first = zoo.load("mobilenet", weights="none").runner.model.get_weights()
    second = zoo.load("mobilenet", weights="none").runner.model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
