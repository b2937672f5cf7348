"""A user's file (a labels file here) is read once, from one descriptor, within a bound: a FIFO,
a device, a huge or a changing file is one line, at once, and nothing is read that should not be.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from zoo.base.user_files import Bound, UserFileError, open_user_file
from zoo.cli.main import main
from zoo.model.labels import LabelsError, check_labels, read_label_file

BOUND = Bound("a test file", 1, "ZOO_TEST_BOUND_MB")


def _refusal(path, capsys) -> tuple[int, str, float]:
    """``zoo predict`` on a garbage .keras file with ``--labels path``: its status, its
    stderr and how long it took (the labels are read before the model file)."""
    model = Path(path).parent / "m.keras"
    model.write_bytes(b"not a model")
    started = time.monotonic()
    status = main(["predict", str(model), "red.png", "--labels", str(path), "--json"])
    return status, capsys.readouterr().err, time.monotonic() - started


def test_a_fifo_given_as_labels_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "labels.txt"
    os.mkfifo(fifo)  # nothing ever writes to it: reading it would wait forever
    status, err, seconds = _refusal(fifo, capsys)
    assert status == 1
    assert err == f"zoo: --labels {fifo}: not a regular file (a named pipe)\n"
    assert seconds < 5


def test_a_device_given_as_labels_is_refused_without_reading_it(tmp_path, capsys):
    status, err, seconds = _refusal("/dev/zero", capsys)
    assert status == 1
    assert err == "zoo: --labels /dev/zero: not a regular file (a character device)\n"
    assert seconds < 5


def test_a_huge_labels_file_is_refused_by_its_size_not_read(tmp_path, capsys):
    huge = tmp_path / "labels.txt"
    with huge.open("wb") as file:
        file.truncate(3 * 2**30)  # 3 GiB, sparse: nothing on disk
    status, err, seconds = _refusal(huge, capsys)
    assert status == 1
    assert err == (
        f"zoo: --labels {huge}: 3,221,225,472 bytes, over the bound for a labels file (16 MiB); "
        "not read (raise it with ZOO_MAX_LABELS_MB=MIB)\n"
    )
    assert seconds < 5


def test_the_bound_is_raised_by_its_variable(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"x" * (2**20 + 1))
    with open_user_file(path) as file, pytest.raises(UserFileError, match="over the bound"):
        file.read(BOUND)
    monkeypatch.setenv("ZOO_TEST_BOUND_MB", "2")
    with open_user_file(path) as file:
        assert len(file.read(BOUND)) == 2**20 + 1
    monkeypatch.setenv("ZOO_TEST_BOUND_MB", "lots")
    with open_user_file(path) as file, pytest.raises(UserFileError, match="in MiB above 0"):
        file.read(BOUND)


@pytest.mark.parametrize("change", ["append", "truncate", "replace"])
def test_a_file_that_changes_while_read_is_refused(tmp_path, change):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\n")
    with open_user_file(path) as file:
        if change == "append":
            with path.open("a") as out:
                out.write("mouse\n")
        elif change == "truncate":
            os.truncate(path, 3)
        else:
            (tmp_path / "other").write_text("cat\ndog\n")
            os.replace(tmp_path / "other", path)
        with pytest.raises(UserFileError, match="changed while zoo read it"):
            file.read(BOUND)


def test_a_link_is_resolved_once_and_read_as_its_target(tmp_path):
    target = tmp_path / "labels.txt"
    target.write_text("cat\ndog\n")
    (tmp_path / "link.txt").symlink_to(target)
    assert read_label_file(tmp_path / "link.txt") == ("cat", "dog")


def test_a_byte_order_mark_is_not_part_of_the_first_label(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcat\r\ndog\n\n".encode())
    assert read_label_file(path) == ("cat", "dog")
    path.write_bytes('\ufeff["cat", "dog"]'.encode())
    assert read_label_file(path) == ("cat", "dog")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('["cat", "\\ud800"]', "label 1 ('\\xed\\xa0\\x80') holds a lone surrogate (U+D800)"),
        ('["cat", "a\\u001b[31m"]', "label 1 ('a\\x1b[31m') holds a control character (U+001B)"),
        ("cat\nd\x00g\n", "label 1 ('d\\x00g') holds a control character (U+0000)"),
        ('["cat", 7]', "label 1 ('7') is not text (int)"),
        ('["cat", " "]', "label 1 (' ') is empty"),
        ('["cat", ["dog"]]', "label 1 ('['dog']') is not text (list)"),
        ("[" * 100_000, "not a JSON list (nested too deep)"),
    ],
)
def test_labels_that_are_not_text_are_refused_in_one_line(tmp_path, content, reason):
    path = tmp_path / "labels.txt"
    path.write_text(content, "utf-8", errors="surrogatepass")
    with pytest.raises(LabelsError) as refused:
        read_label_file(path)
    assert str(refused.value).startswith(f"--labels {path}: {reason}")


def test_labels_that_are_not_utf8_are_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"cat\n" + random.Random(0).randbytes(64) + b"\xff\n")
    with pytest.raises(LabelsError, match=r"not UTF-8 text \(byte \d+\)"):
        read_label_file(path)


def test_check_labels_names_where_and_which():
    check_labels(["cat", "dog", "ü", "猫"], "x")
    with pytest.raises(LabelsError, match=r"^x: label 2 \('a\\nb'\) holds a control character"):
        check_labels(["cat", "dog", "a\nb"], "x")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("bl\nue", "'bl\\nue') holds a control character (U+000A)"),
        (b"gr\xffeen", "'gr\\xffeen') holds a lone surrogate (U+DCFF)"),
    ],
)
def test_training_refuses_a_class_folder_whose_name_is_not_text(tmp_path, name, shown):
    from PIL import Image

    from zoo.training.dataset import scan

    root = tmp_path / "data"
    for folder in ("red", os.fsdecode(name)):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (100 * i, 0, 0)).save(root / folder / f"{i}.png")
    with pytest.raises(LabelsError) as refused:
        scan(root)
    assert str(refused.value).startswith(f"{root}: class folder 0 ({shown}")
    assert str(refused.value).endswith("the folders' names are the labels: rename it")


def test_export_refuses_labels_that_are_not_text():
    pytest.importorskip("onnx")
    from zoo.exporters.onnx import check_options
    from zoo.model.spec import ExportOptions

    check_options(ExportOptions(), (("n1", "cat"), ("n2", "dog")))
    with pytest.raises(LabelsError, match=r"^the model's labels: label 1 \('d\\x1bog'\)"):
        check_options(ExportOptions(), (("n1", "cat"), ("n2", "d\x1bog")))
    with pytest.raises(LabelsError, match=r"^the model's labels: class id 0 \('n\\xed\\xa0\\x80'"):
        check_options(ExportOptions(), (("n\ud800", "cat"), ("n2", "dog")))


def test_an_image_over_its_bound_is_refused_unread(tmp_path, monkeypatch):
    from zoo.base.errors import ImageError
    from zoo.runtime.images import read_bytes

    photo = tmp_path / "photo.jpg"
    with photo.open("wb") as file:
        file.truncate(2 * 2**30)  # 2 GiB, sparse
    started = time.monotonic()
    with pytest.raises(ImageError) as refused:
        read_bytes(photo)
    assert refused.value.reason == (
        "2,147,483,648 bytes, over the bound for an image file (1024 MiB); not read (raise it "
        "with ZOO_MAX_IMAGE_MB=MIB)"
    )
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("kind", ["bundle", "imported"])
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (os.mkfifo, "not a regular file (a named pipe)"),
        (lambda path: path.write_text("[" * 100_000), "not JSON (nested too deep)"),
        (lambda path: path.write_bytes(b'{"a": "\xff"}'), "not JSON ("),
    ],
)
def test_a_card_is_read_as_a_users_file(tmp_path, kind, make, reason):
    """A trained or imported model's card.json: a FIFO refused at once, JSON nested too deep or
    not UTF-8 in one line (once a hang, a RecursionError)."""
    from zoo.base.errors import ZooError

    if kind == "bundle":
        from zoo.sources.bundle import read_card
    else:
        from zoo.sources.imported import read_card
    make(tmp_path / "card.json")
    with pytest.raises(ZooError) as refused:
        read_card(tmp_path)
    assert str(refused.value).startswith(f"{tmp_path / 'card.json'}: unreadable ({reason}")


@pytest.mark.parametrize("suffix", [".onnx", ".keras"])
def test_a_fifo_given_as_a_model_is_not_called_missing(tmp_path, capsys, suffix):
    fifo = tmp_path / f"model{suffix}"
    os.mkfifo(fifo)
    assert main(["predict", str(fifo), "red.png"]) == 1
    assert capsys.readouterr().err == f"zoo: {fifo}: not a regular file (a named pipe)\n"


def test_a_training_image_swapped_for_a_fifo_after_it_was_listed_is_one_line(tmp_path, monkeypatch):
    """The scan lists regular files, then hashes them: one that became a FIFO meanwhile is
    refused at once, not waited on."""
    from PIL import Image

    from zoo.training import dataset

    for folder in ("red", "blue"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (100 * i, 0, 0)).save(tmp_path / folder / f"{i}.png")
    swapped = tmp_path / "red" / "swapped.png"
    swapped.write_bytes(b"listed as a regular file")
    is_image = dataset._is_image

    def swapping(path: Path) -> bool:
        listed = is_image(path)
        if path == swapped:  # the race: listed a file, now a FIFO
            path.unlink()
            os.mkfifo(path)
        return listed

    monkeypatch.setattr(dataset, "_is_image", swapping)
    started = time.monotonic()
    with pytest.raises(UserFileError, match=r"swapped.png: not a regular file \(a named pipe\)"):
        dataset.scan(tmp_path)
    assert time.monotonic() - started < 5
