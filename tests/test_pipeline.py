"""The batch pipeline: folders and globs in, threaded decoding ahead of the model, JSON Lines
out, bad files reported and skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo.base.errors import ZooError
from zoo.runtime.images import load_image
from zoo.runtime.pipeline import PREFETCH_BATCHES, decode, decoded_batches, expand_inputs

from .conftest import input_config, run_zoo


def write_photos(folder, count, size=(64, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for i in range(count):
        path = folder / f"photo{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_folders_are_searched_recursively_and_sorted(tmp_path):
    write_photos(tmp_path / "b", 2)
    write_photos(tmp_path / "a" / "deeper", 1)
    (tmp_path / "notes.txt").write_text("not an image")
    files = expand_inputs([str(tmp_path)])
    assert files == [
        str(tmp_path / "a" / "deeper" / "photo000.jpg"),
        str(tmp_path / "b" / "photo000.jpg"),
        str(tmp_path / "b" / "photo001.jpg"),
    ]


def test_globs_files_and_order_are_kept(tmp_path):
    photos = write_photos(tmp_path, 3)
    pattern = str(tmp_path / "photo00[12].jpg")
    missing = str(tmp_path / "missing.jpg")
    assert expand_inputs([str(photos[0]), pattern, missing]) == [
        str(photos[0]),
        str(photos[1]),
        str(photos[2]),
        missing,  # reported later as that file's error
    ]


@pytest.mark.parametrize("argument", ["empty-folder", "*.png"])
def test_a_folder_or_pattern_without_images_is_an_error(tmp_path, argument):
    (tmp_path / "empty-folder").mkdir()
    target = str(tmp_path / argument)
    with pytest.raises(ZooError, match="no image files"):
        expand_inputs([target])


def test_batches_come_in_order_with_bad_files_as_errors(tmp_path):
    photos = [str(p) for p in write_photos(tmp_path, 7)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    paths = [*photos[:3], str(bad), *photos[3:]]
    batches = list(decoded_batches(paths, input_config((32, 32)), batch_size=3, workers=2))
    assert [len(batch) for batch in batches] == [3, 3, 2]
    items = [item for batch in batches for item in batch]
    assert [item.path for item in items] == paths
    assert items[3].pixels is None and "corrupt or truncated" in items[3].error.reason
    for item, path in zip(items[:3], paths[:3], strict=True):
        assert np.array_equal(item.pixels, load_image(path, input_config((32, 32))))


def test_decoding_runs_ahead_by_a_bounded_number_of_batches(tmp_path):
    photos = [str(p) for p in write_photos(tmp_path, 2)] * 50
    taken = 0

    def counted():
        nonlocal taken
        for path in photos:
            taken += 1
            yield path

    batches = decoded_batches(counted(), input_config((16, 16)), batch_size=4, workers=2)
    next(batches)
    # The batch handed over, and PREFETCH_BATCHES decoding behind it; not the 100 files.
    assert taken == 4 * (1 + PREFETCH_BATCHES)
    batches.close()


def test_fast_decode_is_close_to_the_full_decode(tmp_path):
    smooth = np.linspace(0, 255, 800, dtype=np.float32)
    gradient = np.stack(np.broadcast_arrays(smooth[None, :], smooth[:600, None], 128.0), -1)
    path = tmp_path / "large.jpg"
    Image.fromarray(gradient.astype(np.uint8)).save(path, quality=95)
    full = decode(str(path), input_config((224, 224))).pixels.astype(int)
    fast = decode(str(path), input_config((224, 224)), fast_decode=True).pixels.astype(int)
    assert fast.shape == full.shape == (224, 224, 3)
    assert np.abs(fast - full).mean() < 3  # same picture, not the same pixels
    assert not np.array_equal(fast, full)


@pytest.mark.slow
def test_predict_streams_json_lines_and_skips_a_corrupt_file(tmp_path, mobilenet_onnx):
    folder = tmp_path / "photos"
    photos = write_photos(folder, 9)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    result = run_zoo(
        "predict", str(mobilenet_onnx), str(folder), "--jsonl", "--batch-size", "4",
        "--decode-threads", "2", "--top", "2", "--provider", "cpu",
    )  # fmt: skip
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in records] == sorted(
        str(p) for p in [*photos, folder / "corrupt.jpg"]
    )
    [error] = [r for r in records if "error" in r]
    assert error["image"].endswith("corrupt.jpg") and "truncated" in error["error"]
    assert all(len(r["top"]) == 2 for r in records if "top" in r)
    assert result.stderr.splitlines() == [f"zoo: {folder / 'corrupt.jpg'}: {error['error']}"]
