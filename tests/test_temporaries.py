"""Temporary folders zoo causes are zoo's: what a library puts in the system's temporary folder
while zoo runs it (Keras extracting a ``.keras`` file's assets) goes into a folder of zoo's,
removed however the work ends: done, failed, Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import zipfile

import pytest

from zoo.base.files import own_temporaries
from zoo.base.interrupts import Terminated


@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch):
    """The system's temporary folder, for the test: an empty folder of its own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("ending", [None, RuntimeError, KeyboardInterrupt, Terminated])
def test_what_tempfile_makes_in_the_block_is_removed_however_it_ends(tmpdir_here, ending):
    expected = pytest.raises(ending) if ending else contextlib.nullcontext()
    with expected, own_temporaries() as folder:
        scratch = tempfile.mkdtemp()  # as Keras's get_temp_dir() makes its own
        tempfile.NamedTemporaryFile(delete=False).close()
        assert os.path.commonpath([scratch, folder]) == str(folder)
        assert folder.parent == tmpdir_here
        if ending:
            raise ending
    assert list(tmpdir_here.iterdir()) == []
    assert tempfile.gettempdir() == str(tmpdir_here)


def test_a_dead_process_s_folder_is_removed_by_the_next_a_live_one_s_kept(tmpdir_here):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = tmpdir_here / f"zoo-tmp.pid{dead.stdout.strip()}.abc123"
    (left / "assets").mkdir(parents=True)
    live = tmpdir_here / f"zoo-tmp.pid{os.getppid()}.def456"
    live.mkdir()
    with own_temporaries():
        pass
    assert sorted(tmpdir_here.iterdir()) == [live]


@pytest.mark.slow
def test_keras_extracting_a_files_assets_interrupted_leaves_nothing(tmpdir_here, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    """A .keras file with assets (more than three members): Keras extracts them all into a
    temporary folder, and SIGTERM arrives once they are out."""
    pytest.importorskip("keras")
    from keras.src.utils import file_utils

    from zoo.sources.keras_file import KerasFile, KerasFileOptions

    from .keras_files import make

    path = make("augmented", tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(20):
            archive.writestr(f"assets/vocabulary{i}.txt", "word\n" * 1000)
    extract = file_utils.extract_open_archive
    extracted = []

    def extract_then_sigterm(archive, destination):
        extract(archive, destination)
        extracted.append(destination)
        raise Terminated

    monkeypatch.setattr(file_utils, "extract_open_archive", extract_then_sigterm)
    with pytest.raises(Terminated):
        KerasFile.open(path, KerasFileOptions())
    assert extracted and os.path.commonpath([extracted[0], tmpdir_here]) == str(tmpdir_here)
    assert list(tmpdir_here.iterdir()) == []
