"""Image loading: bit for bit what keras.utils.load_img gives, upright, and every bad file is
one ``ImageError`` line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from zoo.base.errors import ImageError, ZooError
from zoo.runtime.images import (
    INTERPOLATIONS,
    decode_image,
    decode_to_size,
    load_image,
    open_lazily,
    resize,
)
from zoo.sources.keras_model import import_keras

from .conftest import input_config, run_zoo
from .image_files import (
    empty_file,
    oriented_jpeg,
    pixels,
    png_bomb,
    rgb,
    sixteen_bit_png,
    text_file,
    truncated_jpeg,
    with_alpha,
)

SIZES = [(224, 224), (299, 299)]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def keras_pixels(keras, path: Path, size, interpolation="nearest") -> np.ndarray:
    """What the Keras tutorial feeds a model (float32)."""
    return keras.utils.img_to_array(
        keras.utils.load_img(path, target_size=size, interpolation=interpolation)
    )


def assert_same_as_keras(keras, path: Path, size, interpolation="nearest") -> None:
    actual = load_image(path, input_config(size, interpolation))
    assert actual.dtype == np.uint8
    assert actual.shape == (*size, 3)
    expected = keras_pixels(keras, path, size, interpolation)
    assert np.array_equal(actual.astype(np.float32), expected), path.name


# Synthetic files ---------------------------------------------------------------------------


def palette_with_transparency() -> Image.Image:
    image = rgb().quantize(colors=64)
    image.info["transparency"] = 0
    return image


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


SYNTHETIC = {
    "png_rgb": lambda d: save(rgb(), d / "rgb.png"),
    "png_rgba": lambda d: save(with_alpha(rgb()), d / "rgba.png"),
    "png_p": lambda d: save(rgb().quantize(colors=64), d / "p.png"),
    "png_p_transparent": lambda d: save(palette_with_transparency(), d / "pt.png"),
    "png_l": lambda d: save(rgb().convert("L"), d / "l.png"),
    "png_la": lambda d: save(with_alpha(rgb().convert("L")), d / "la.png"),
    "bmp": lambda d: save(rgb(), d / "rgb.bmp"),
    "jpeg_rgb": lambda d: save(rgb(), d / "rgb.jpg", quality=90),
    "jpeg_cmyk": lambda d: save(rgb().convert("CMYK"), d / "cmyk.jpg", quality=90),
    "gif": lambda d: save(rgb(), d / "rgb.gif"),
    "exactly_224": lambda d: save(rgb(224, 224), d / "square.png"),
    "one_pixel": lambda d: save(rgb(1, 1), d / "dot.png"),
    "thin": lambda d: save(rgb(2000, 3), d / "thin.png"),
}

# Pillow's mode for each, so that a test cannot pass by comparing RGB files only.
SYNTHETIC_MODES = {
    "png_rgba": "RGBA",
    "png_p": "P",
    "png_p_transparent": "P",
    "png_l": "L",
    "png_la": "LA",
    "jpeg_cmyk": "CMYK",
    "gif": "P",
}


# 1. Bit for bit what Keras gives -----------------------------------------------------------


@pytest.mark.parametrize("kind", SYNTHETIC)
def test_synthetic_files_have_the_modes_they_are_meant_to_cover(tmp_path, kind):
    path = SYNTHETIC[kind](tmp_path)
    with Image.open(path) as image:
        assert image.mode == SYNTHETIC_MODES.get(kind, "RGB")
        assert ("transparency" in image.info) == (kind == "png_p_transparent")


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_shared_photos_equal_keras(keras, shared_images, size):
    assert shared_images
    for path in shared_images:
        assert_same_as_keras(keras, path, size)


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("size", SIZES)
def test_photo_equals_keras(keras, photo, size, interpolation):
    assert_same_as_keras(keras, photo, size, interpolation)


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", SYNTHETIC)
def test_synthetic_files_equal_keras(keras, tmp_path, kind, size, interpolation):
    assert_same_as_keras(keras, SYNTHETIC[kind](tmp_path), size, interpolation)


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", [i for i in INTERPOLATIONS if i != "nearest"])
def test_shared_photos_equal_keras_with_other_interpolations(keras, shared_images, interpolation):
    for path in shared_images:
        assert_same_as_keras(keras, path, (224, 224), interpolation)


def test_interpolation_matters(photo):
    """Otherwise the interpolation comparisons above would prove nothing."""
    results = [load_image(photo, input_config((224, 224), name)) for name in INTERPOLATIONS]
    for i, first in enumerate(results):
        for second in results[i + 1 :]:
            assert not np.array_equal(first, second)


def test_an_image_of_the_target_size_is_not_resized(tmp_path):
    path = SYNTHETIC["exactly_224"](tmp_path)
    for interpolation in INTERPOLATIONS:
        assert np.array_equal(
            load_image(path, input_config((224, 224), interpolation)), np.asarray(rgb(224, 224))
        )


# 2. Bad files ------------------------------------------------------------------------------


def directory(path: Path) -> Path:
    path.mkdir()
    return path


BAD_FILES = {
    "text": ("notes.txt", text_file, "not an image"),
    "empty": ("empty.jpg", empty_file, "empty"),
    "truncated_jpeg": ("cut.jpg", truncated_jpeg, "truncated"),
    "missing": ("missing.jpg", lambda path: path, "no such file"),
    "directory": ("folder.jpg", directory, "directory"),
    "bomb": ("bomb.png", png_bomb, "too large"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_file_is_one_image_error_line_naming_it(tmp_path, kind):
    name, write, keyword = BAD_FILES[kind]
    path = write(tmp_path / name)
    with pytest.raises(ImageError) as caught:
        load_image(path, input_config((224, 224)))
    error = caught.value
    assert error.path == path
    assert str(path) in str(error)
    assert keyword in error.reason
    assert "\n" not in str(error)


def test_bomb_is_refused_naming_its_size(tmp_path):
    path = png_bomb(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="too large") as caught:
        load_image(path, input_config((224, 224)))
    assert "900,000,000" in caught.value.reason


def test_images_over_pillows_limit_are_refused_not_just_warned_about(tmp_path):
    """Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; zoo refuses from 1x."""
    path = png_bomb(tmp_path / "big.png", width=10000, height=10000)
    with pytest.raises(ImageError, match=r"image too large \(100,000,000 pixels"):
        load_image(path, input_config((224, 224)))


# 3. Odd but valid files --------------------------------------------------------------------

ODD_FILES = {
    "png_p_transparent": SYNTHETIC["png_p_transparent"],
    "png_la": SYNTHETIC["png_la"],
    "png_rgba": SYNTHETIC["png_rgba"],
    "jpeg_cmyk": SYNTHETIC["jpeg_cmyk"],
    "png_i16": lambda d: sixteen_bit_png(
        d / "i16.png", np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    ),
}


@pytest.mark.parametrize("kind", ODD_FILES)
def test_odd_modes_load_as_rgb_uint8(tmp_path, kind):
    result = load_image(ODD_FILES[kind](tmp_path), input_config((50, 70)))
    assert result.shape == (50, 70, 3)
    assert result.dtype == np.uint8
    assert result.min() < result.max()


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    result = load_image(sixteen_bit_png(tmp_path / "ramp.png", ramp), input_config((16, 256)))
    assert not np.all(result == 255)
    assert np.array_equal(result[..., 0], result[..., 1])
    assert np.array_equal(result[..., 0], result[..., 2])
    assert result[0, 0, 0] == 0
    assert result[0, -1, 0] == 255
    assert np.all(np.diff(result[0, :, 0].astype(int)) >= 0)
    assert np.abs(result[0, :, 0].astype(int) - np.arange(256)).max() <= 1


def test_sixteen_bit_mid_grey_is_mid_grey(tmp_path):
    grey = np.full((8, 8), 32768, dtype=np.uint16)
    result = load_image(sixteen_bit_png(tmp_path / "grey.png", grey), input_config((8, 8)))
    assert np.all(np.abs(result.astype(int) - 128) <= 1)


# Large images in little memory -------------------------------------------------------------

SAME_PIXELS = {
    **SYNTHETIC,
    **ODD_FILES,
    "oriented": lambda d: oriented_jpeg(d / "oriented.jpg"),
    "png_1": lambda d: save(rgb().convert("1"), d / "1.png"),
    "tiff_f": lambda d: save(
        Image.fromarray(pixels(90, 70)[..., 0].astype(np.float32)), d / "f.tif"
    ),
    "i16_noise": lambda d: sixteen_bit_png(
        d / "noise.png", np.random.default_rng(3).integers(0, 65536, (61, 83), dtype=np.uint16)
    ),
}


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("kind", SAME_PIXELS)
def test_decoding_to_size_gives_the_pixels_of_decoding_then_resizing(tmp_path, kind, interpolation):
    data = SAME_PIXELS[kind](tmp_path).read_bytes()
    for size in [(50, 70), (224, 224)]:
        want = resize(decode_image(data, kind), size, interpolation)
        got = decode_to_size(open_lazily(data, kind), kind, input_config(size, interpolation))
        assert np.array_equal(got, want), (kind, size, interpolation)


PEAK_MEMORY = """
import sys
from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.runtime.images import decode_image, decode_to_size, open_lazily, resize

def kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the peak (VmHWM) starts again from here
before = kib("VmRSS:")
if sys.argv[2] == "rgb":
    resize(decode_image(data, "x"), (224, 224), "nearest")
else:
    config = InputConfig((224, 224), PreprocessSpec("none"), (("0", "x"),), sys.argv[2])
    decode_to_size(open_lazily(data, "x"), "x", config)
print((kib("VmHWM:") - before) * 1024)
"""
SIDE = 4000


def large_image(path: Path, kind: str) -> Path:
    """A ``SIDE`` x ``SIDE`` PNG that compresses well: a horizontal ramp."""
    if kind == "16-bit":
        return sixteen_bit_png(
            path, np.tile(np.linspace(0, 65535, SIDE).astype(np.uint16), (SIDE, 1))
        )
    image = Image.fromarray(np.tile((np.arange(SIDE) % 256).astype(np.uint8), (SIDE, 1)))
    image.putpalette([channel for i in range(256) for channel in (i, 255 - i, i // 2)])
    return save(image, path)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "kind, how, bytes_per_pixel",
    [
        ("16-bit", "nearest", 4),  # the 16-bit pixels and an 8-bit copy of them
        ("16-bit", "bilinear", 4),
        ("16-bit", "rgb", 8),  # and RGB, at Pillow's 4 bytes a pixel
        ("palette", "nearest", 2),  # the palette indices
    ],
)
def test_large_16_bit_and_palette_images_decode_in_little_memory(
    tmp_path, kind, how, bytes_per_pixel
):
    path = large_image(tmp_path / "large.png", kind)
    assert path.stat().st_size < 1 << 20 and Image.open(path).mode == (
        "I;16" if kind == "16-bit" else "P"
    )
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(path), how],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    peak = int(result.stdout)
    assert peak < bytes_per_pixel * SIDE * SIDE, f"{peak / SIDE / SIDE:.1f} bytes a pixel"


# 4. EXIF orientation -----------------------------------------------------------------------


def test_exif_orientation_is_honoured(tmp_path):
    path = oriented_jpeg(tmp_path / "phone.jpg")
    with Image.open(path) as stored:
        upright = ImageOps.exif_transpose(stored)
    assert upright.size == (20, 40)  # Pillow agrees: displayed 20 wide x 40 tall
    result = load_image(path, input_config((40, 20)))
    assert np.array_equal(result, np.asarray(upright.convert("RGB")))
    # Rotating left-red/right-blue 90° clockwise puts red on top and blue below.
    top, bottom = result[:15].astype(int), result[25:].astype(int)
    assert np.all(top[..., 0] > 200) and np.all(top[..., 2] < 60)
    assert np.all(bottom[..., 2] > 200) and np.all(bottom[..., 0] < 60)


def test_exif_orientation_is_honoured_for_a_pillow_image(tmp_path):
    path = oriented_jpeg(tmp_path / "phone.jpg")
    with Image.open(path) as image:
        assert image.size == (40, 20)
        assert np.array_equal(
            load_image(image, input_config((40, 20))), load_image(path, input_config((40, 20)))
        )


@pytest.mark.slow
def test_exif_orientation_is_a_deliberate_difference_from_keras(keras, tmp_path):
    path = oriented_jpeg(tmp_path / "phone.jpg")
    expected = keras_pixels(keras, path, (40, 20))
    # Keras ignores the tag: it stretches the stored image, red still on the left.
    assert np.all(expected[:, :8, 0] > 200) and np.all(expected[:, 12:, 2] > 200)
    assert not np.array_equal(load_image(path, input_config((40, 20))).astype(np.float32), expected)


# 5. Pillow images and arrays ---------------------------------------------------------------


def test_loads_a_pillow_image_like_the_file(tmp_path):
    path = SYNTHETIC["png_rgba"](tmp_path)
    with Image.open(path) as image:
        assert image.mode == "RGBA"
        from_image = load_image(image, input_config((224, 224)))
    assert np.array_equal(from_image, load_image(path, input_config((224, 224))))


def test_loads_a_uint8_array():
    array = pixels(40, 30)
    assert np.array_equal(load_image(array, input_config((30, 40))), array)
    resized = load_image(array, input_config((15, 20), "bilinear"))
    expected = np.asarray(Image.fromarray(array).resize((20, 15), Image.Resampling.BILINEAR))
    assert np.array_equal(resized, expected)


@pytest.mark.parametrize(
    "array",
    [
        pixels(40, 30).astype(np.float32),
        pixels(40, 30)[..., 0],
        np.dstack([pixels(40, 30), pixels(40, 30)[..., :1]]),
    ],
    ids=["float32", "height_width", "four_channels"],
)
def test_rejects_other_arrays(array):
    with pytest.raises(ImageError, match="uint8"):
        load_image(array, input_config((30, 40)))


def test_rejects_an_unknown_interpolation(photo):
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        input_config((224, 224), "cubic")
    with Image.open(photo) as image, pytest.raises(ZooError, match="unknown interpolation"):
        resize(image, (224, 224), "cubic")


# 6. The CLI --------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_reports_each_bad_file_and_classifies_the_rest(tmp_path, photo):
    bad = text_file(tmp_path / "bad.txt")
    empty = empty_file(tmp_path / "empty.jpg")
    images = [str(photo), str(bad), str(empty)]
    done = run_zoo("predict", "mobilenet", *images, "--weights", "none", "--json")
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)
    assert [result["image"] for result in results] == images
    assert len(results[0]["top"]) == 5
    assert "error" not in results[0]
    assert "not an image" in results[1]["error"]
    assert "empty" in results[2]["error"]
    assert "top" not in results[1] and "top" not in results[2]
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    for line, path in zip(lines, [bad, empty], strict=True):
        assert line.startswith(f"zoo: {path}: ")


@pytest.mark.slow
def test_predict_refuses_a_bomb_without_loading_a_model(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png")
    # Keras and TensorFlow that cannot be imported: loading a model would add a second error.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for module in ("keras", "tensorflow"):
        (shadow / f"{module}.py").write_text('raise ImportError("test: model loading")\n')
    python_path = os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))
    done = run_zoo(
        "predict", "mobilenet", str(bomb), "--weights", "none", env={"PYTHONPATH": python_path}
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"zoo: {bomb}: image too large (900,000,000 pixels")
