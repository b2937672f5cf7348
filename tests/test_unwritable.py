"""Places zoo cannot write: a full disk, or a folder that takes no files. One line naming
what was being written, and nothing of it left behind.

The full disk is a real one, a 1 MiB tmpfs mounted for the test (it needs root, else the
test skips)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from zoo.base.errors import CannotWrite, DiskFull
from zoo.base.files import FolderKind, atomic_directory, atomic_path

from .conftest import run_zoo

MEGABYTE = 1 << 20


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB file system, and the call that fills it."""
    mount = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_file_that_does_not_fit_names_its_destination(full_disk):
    destination = full_disk / "big.bin"
    refused = pytest.raises(DiskFull, match=f"^no space left on device writing {destination}$")
    with refused, atomic_path(destination) as temporary:
        temporary.write_bytes(os.urandom(2 * MEGABYTE))
    assert list(full_disk.iterdir()) == []


def test_a_folder_that_does_not_fit_names_its_destination(full_disk, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for i in range(3):
        (source / f"{i}.bin").write_bytes(os.urandom(MEGABYTE // 2))
    destination = full_disk / "copy"
    refused = pytest.raises(DiskFull, match=f"^no space left on device writing {destination}$")
    with refused, atomic_directory(destination, FolderKind("thing")) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)  # one shutil.Error for all
    assert list(full_disk.iterdir()) == []


@pytest.mark.slow
def test_an_export_on_a_full_disk_is_one_line_and_leaves_nothing(full_disk):
    output = full_disk / "mobilenet.onnx"
    result = run_zoo("export", "mobilenet", "--weights", "none", "-o", str(output))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"zoo: no space left on device writing {output}"
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert list(Path(full_disk).iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("folder", [False, True])
def test_a_folder_that_takes_no_files_is_one_line(folder):
    destination = Path("/proc/zoo-test-output")
    writer = (
        atomic_directory(destination, FolderKind("thing")) if folder else atomic_path(destination)
    )
    with pytest.raises(CannotWrite, match=f"^cannot write {destination}: no such file"), writer:
        pytest.fail("the block ran")
