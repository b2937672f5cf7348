"""Every command that writes a folder replaces only an empty one or one zoo wrote of the same
kind; anything else, a blank name, or a folder that holds what must stay (the working
directory, home, zoo's home, the data being trained on) is refused, and nothing is touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoo.base.files import MARKER, FolderKind, FolderRefused, atomic_directory, check_replaceable
from zoo.sources.bundle import BUNDLE

from .conftest import run_zoo

KIND = FolderKind("thing")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), to prove nothing changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def users_folder(tmp_path) -> Path:
    folder = tmp_path / "thesis"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.txt").write_text("three years of work\n")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A private zoo home for the commands run in a subprocess."""
    return {"ZOO_HOME": str(tmp_path / "home"), "ZOO_BUNDLES": ""}


@pytest.fixture
def data(tmp_path) -> Path:
    from PIL import Image

    for label in ("red", "blue"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (200, 9 * i, 9)).save(tmp_path / "data" / label / f"{i}.png")
    return tmp_path / "data"


def write_card(folder: Path) -> Path:
    """A bundle as far as its card goes, in the first card format (zoo lists it; nothing here
    loads its weights)."""
    folder.mkdir(parents=True)
    card = {
        "format": "zoo-bundle",
        "format_version": 1,
        "name": folder.name,
        "base": {"model": "mobilenet", "weights": "none", "weights_sha256": None},
        "input_size": [224, 224],
        "preprocess": {
            "name": "tf",
            "channel_order": "RGB",
            "divisor": 127.5,
            "mean": [1.0] * 3,
            "std": [1.0] * 3,
        },
        "interpolation": "bilinear",
        "labels": [["a", "a"], ["b", "b"]],
        "head": {"dropout": 0.2},
        "mode": "head",
        "weights_file": "model.h5",
        "weights_sha256": "0" * 64,
        "verification_images": [],
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def assert_refused(result, *words: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: "), result.stderr
    assert "unexpected" not in lines[0] and all(w in lines[0] for w in words), lines[0]


# --- the helper ------------------------------------------------------------------------------


def test_a_new_or_empty_folder_is_written_with_its_kinds_marker(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new", "empty"):
        with atomic_directory(tmp_path / name, KIND) as staging:
            (staging / "a.txt").write_text("a")
        assert json.loads((tmp_path / name / MARKER).read_text())["kind"] == "thing"


def test_a_folder_zoo_wrote_is_replaced_whole(tmp_path):
    with atomic_directory(tmp_path / "out", KIND) as staging:
        (staging / "old.txt").write_text("old")
    with atomic_directory(tmp_path / "out", KIND) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "new.txt"]


def test_a_users_folder_is_refused_and_left_byte_identical(users_folder):
    before = snapshot(users_folder)
    refused = pytest.raises(FolderRefused, match="thesis: exists and is not a thing zoo wrote")
    with refused, atomic_directory(users_folder, KIND) as staging:
        (staging / "a.txt").write_text("a")
    assert snapshot(users_folder) == before
    assert sorted(p.name for p in users_folder.parent.iterdir()) == ["thesis"]  # no temporaries


def test_the_refusal_names_the_kind_with_its_article(users_folder):
    refused = pytest.raises(FolderRefused, match="exists and is not an imported model zoo wrote")
    with refused:
        check_replaceable(users_folder, FolderKind("imported model"))


def test_a_folder_of_another_kind_is_refused(tmp_path):
    with atomic_directory(tmp_path / "out", FolderKind("package")):
        pass
    with pytest.raises(FolderRefused, match="not a thing"):
        check_replaceable(tmp_path / "out", KIND)


def test_a_file_or_a_symlink_is_refused(tmp_path, users_folder):
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(users_folder)
    for name in ("file", "link"):
        with pytest.raises(FolderRefused, match="is not a folder"):
            check_replaceable(tmp_path / name, KIND)
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("which", ["cwd", "home", "zoo_home", "bundles", "parent_of_home"])
def test_folders_that_must_stay_are_refused_even_when_empty(tmp_path, monkeypatch, which):
    home, zoo_home = tmp_path / "user", tmp_path / "zoo-home"
    (home / "work").mkdir(parents=True)
    (zoo_home / "bundles").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))
    monkeypatch.chdir(home / "work")
    target = {
        "cwd": Path("../work"),
        "home": home,
        "zoo_home": zoo_home,
        "bundles": zoo_home / "bundles",
        "parent_of_home": tmp_path,
    }[which]
    with pytest.raises(FolderRefused, match=r"refused: it (is|contains)"):
        check_replaceable(target, KIND)


def test_a_legacy_bundle_without_a_marker_is_still_replaceable(tmp_path):
    write_card(tmp_path / "old")
    with atomic_directory(tmp_path / "old", BUNDLE) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == [MARKER, "new.txt"]


CONCURRENT_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from zoo.base.files import FolderKind, atomic_directory

    for round in range(20):
        with atomic_directory(Path(sys.argv[1]), FolderKind("thing")) as staging:
            (staging / "writer.txt").write_text(sys.argv[2])
            (staging / "round.txt").write_text(str(round))
    """
)


@pytest.mark.slow
def test_concurrent_writers_of_one_folder_all_end_cleanly_and_leave_it_whole(tmp_path):
    destination = tmp_path / "same"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_WRITER, str(destination), str(i)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    assert sorted(p.name for p in destination.iterdir()) == [MARKER, "round.txt", "writer.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]


# --- every command that writes a folder ------------------------------------------------------


@pytest.mark.slow
def test_train_refuses_a_users_folder_and_leaves_it_byte_identical(users_folder, data, env):
    before = snapshot(users_folder)
    result = run_zoo(
        "train", "mobilenet", str(data), "-o", str(users_folder), "--weights", "none", env=env
    )
    assert_refused(result, str(users_folder), "not a bundle zoo wrote")
    assert snapshot(users_folder) == before


@pytest.mark.slow
def test_train_refuses_a_blank_name_and_keeps_the_trained_models(tmp_path, data, env):
    bundles = write_card(Path(env["ZOO_HOME"]) / "bundles" / "kept")
    before = snapshot(bundles.parent)
    for blank in ("", "  "):
        result = run_zoo("train", "mobilenet", str(data), "-o", blank, "--weights", "none", env=env)
        assert_refused(result, "empty folder name")
    assert snapshot(bundles.parent) == before


@pytest.mark.slow
def test_train_refuses_the_working_directory_and_the_data(tmp_path, data, env):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "notes.txt").write_text("mine")
    result = run_zoo("train", "mobilenet", str(data), "-o", "../inner", env=env, cwd=inner)
    assert_refused(result, "the working directory")
    assert (inner / "notes.txt").read_text() == "mine"
    result = run_zoo("train", "mobilenet", str(data), "-o", str(data), env=env)
    assert_refused(result, "the data being trained on")
    result = run_zoo("train", "mobilenet", str(data / "red"), "-o", str(tmp_path), env=env)
    assert_refused(result, "contains")


@pytest.mark.slow
def test_package_refuses_a_users_folder(users_folder, env):
    write_card(Path(env["ZOO_HOME"]) / "bundles" / "colours")
    before = snapshot(users_folder)
    assert_refused(
        run_zoo("package", "colours", "-o", str(users_folder), env=env), "not a package zoo wrote"
    )
    assert_refused(run_zoo("package", "colours", "-o", "", env=env), "empty folder name")
    assert snapshot(users_folder) == before


@pytest.mark.slow
def test_a_triton_export_refuses_a_users_model_folder(tmp_path, env):
    entry = tmp_path / "repository" / "mobilenet"
    (entry / "1").mkdir(parents=True)
    (entry / "1" / "model.onnx").write_bytes(b"the user's own model")
    (entry / "config.pbtxt").write_text('name: "mobilenet"\n')
    before = snapshot(entry)
    args = ("export", "mobilenet", "--weights", "none", "--no-verify", "--triton")
    result = run_zoo(*args, str(entry.parent), env=env)
    assert_refused(result, "not a Triton model entry zoo wrote")
    assert snapshot(entry) == before
    assert_refused(run_zoo(*args, "", env=env), "empty folder name")
