"""``--preprocess`` texts parsed into a ``PreprocessSpec`` (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.model.preprocess_text import PreprocessTextError, parse_preprocess
from zoo.model.spec import PreprocessSpec
from zoo.plugin.registry import get_registry
from zoo.runtime.preprocessing import preprocess

REGISTERED = get_registry().preprocessors


def test_a_registered_name_is_that_preprocessor():
    assert parse_preprocess("unit", REGISTERED) == REGISTERED["unit"]
    assert REGISTERED["unit"].divisor == 255


@pytest.mark.parametrize(
    "text, order, divisor, mean, std",
    [
        ("scale=1/255,bgr", "BGR", 255, 0, 1),
        ("scale=1/127.5, mean=1", "RGB", 127.5, 1, 1),
        ("scale=0.5", "RGB", 2, 0, 1),
        ("unit,bgr", "BGR", 255, 0, 1),
        ("scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225", "RGB", 255, 0.456, 0.224),
    ],
)
def test_steps_parse(text, order, divisor, mean, std):
    spec = parse_preprocess(text, REGISTERED)
    assert (spec.name, spec.channel_order) == (text.strip(), order)
    assert spec.divisor == pytest.approx(divisor)
    assert spec.mean[1] == pytest.approx(mean) and spec.std[1] == pytest.approx(std)


def test_the_steps_compute_what_they_say():
    pixels = np.array([[[10, 20, 30]]], np.uint8)
    spec = parse_preprocess("scale=1/255,bgr,mean=0.5,std=0.25", REGISTERED)
    expected = (np.array([30, 20, 10]) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(preprocess(pixels, spec)[0, 0], expected, rtol=1e-6)
    inverted = parse_preprocess("scale=-1/255,mean=-1", REGISTERED)  # 1 - x/255: MNIST, inverted
    np.testing.assert_allclose(preprocess(pixels, inverted)[0, 0], 1 - pixels[0, 0] / 255, 1e-6)


def test_grayscale_is_pillows_luma():
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    gray = preprocess(pixels, PreprocessSpec("none", channel_order="L"))
    assert gray.shape == (2, 24, 24, 1)
    for image, values in zip(pixels, gray, strict=True):
        np.testing.assert_array_equal(Image.fromarray(image).convert("L"), values[..., 0])


@pytest.mark.parametrize(
    "text, why",
    [
        ("scale=1/0", "divides by zero"),
        ("scale=abc", "'abc' is not a number"),
        ("scale=1/255,scale=2", "'scale' is given twice"),
        ("mean=1:2", "mean takes one value or three"),
        ("std=0", "std must be non-zero"),
        ("gamma=2", "unknown setting 'gamma'"),
        ("sharpen", "no such preprocessor; choose from caffe"),
        ("scale=2,sharpen", "'sharpen' is no preprocessor"),
        ("scale=1/255,unit", "name the preprocessor 'unit' first"),
        ("bgr,rgb", "give one channel order"),
        ("scale=nan", "not a finite number"),
    ],
)
def test_a_text_that_does_not_parse_is_one_line(text, why):
    with pytest.raises(PreprocessTextError) as error:
        parse_preprocess(text, REGISTERED)
    assert str(error.value).startswith(f"--preprocess {text!r}: ") and why in str(error.value)
