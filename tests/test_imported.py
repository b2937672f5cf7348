"""An imported model's card is not trusted: what changes its answer (labels and their order,
preprocessing, size, output kind, the file's sha256, its custom objects) is covered by an
integrity record, and its custom objects are imported from the files recorded at ``zoo
import``, never from the folder a later command runs in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.model.input_config import InputConfig
from zoo.model.spec import PreprocessSpec
from zoo.sources import imported
from zoo.sources.imported import CustomModule, ImportedCard, ImportedModelError, read_card

from . import keras_files
from .conftest import run_zoo

SAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "samples"


def kept(folder: Path, **card_fields) -> Path:
    """An imported model's folder as ``zoo import`` writes it (its model file a stand-in)."""
    card = ImportedCard(
        name="tinted",
        model_file="model.keras",
        sha256="ab" * 32,
        source="/somewhere/tinted.keras",
        input=InputConfig(
            (32, 32), PreprocessSpec("unit", divisor=255.0), (("a", "cat"), ("b", "dog"))
        ),
        custom_objects=(CustomModule("acme_layers", "/somewhere/acme_layers.py", "cd" * 32),),
        allow_lambda=False,
        zoo_version="0.1.0",
        created="2026-12-07T00:00:00+00:00",
        **card_fields,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.keras").write_bytes(b"a stand-in")
    (folder / imported.CARD).write_text(json.dumps(card.to_dict(), indent=1))
    return folder


def edit(folder: Path, change) -> None:
    document = json.loads((folder / imported.CARD).read_text())
    change(document)
    (folder / imported.CARD).write_text(json.dumps(document))


def test_a_card_as_written_reads_back(tmp_path):
    card = read_card(kept(tmp_path / "tinted"))
    assert card.input.labels == (("a", "cat"), ("b", "dog"))
    assert card.custom_objects[0].path == "/somewhere/acme_layers.py"


EDITS = {
    "labels": lambda d: d["input"]["labels"].reverse(),
    "preprocess": lambda d: d["input"]["preprocess"].update(divisor=1.0),
    "output": lambda d: d["input"].update(output="logits"),
    "size": lambda d: d["input"].update(size=[64, 64]),
    "custom_objects": lambda d: d["custom_objects"][0].update(path="./acme_layers.py"),
    "allow_lambda": lambda d: d.update(allow_lambda=True),
    "sha256": lambda d: d.update(sha256="ef" * 32),
}


@pytest.mark.parametrize("field", EDITS)
def test_an_edited_card_is_refused_naming_the_field(tmp_path, field):
    folder = kept(tmp_path / "tinted")
    edit(folder, EDITS[field])
    with pytest.raises(ImportedModelError, match=f"its {field} changed since zoo import"):
        read_card(folder)


def test_a_card_without_its_record_is_refused(tmp_path):
    folder = kept(tmp_path / "tinted")
    edit(folder, lambda d: d.pop("integrity"))
    with pytest.raises(ImportedModelError, match="changed since zoo import"):
        read_card(folder)


def test_a_first_format_card_still_reads(tmp_path):
    """Format 1: no integrity record, custom objects as module names."""
    folder = kept(tmp_path / "tinted")

    def first_format(document):
        del document["integrity"]
        document.update(format_version=1, custom_objects=["acme_layers"])

    edit(folder, first_format)
    card = read_card(folder)
    assert card.custom_objects == (CustomModule("acme_layers", "", ""),)


@pytest.mark.tensorflow
def test_custom_objects_come_from_the_recorded_file_never_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_BUNDLES", raising=False)
    made = tmp_path / "made"
    made.mkdir()
    keras_files.make("custom", made)
    done = run_zoo(
        "import", "custom_layer.keras", "--name", "gains",
        "--custom-objects", keras_files.CUSTOM_MODULE, cwd=made,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = made / f"{keras_files.CUSTOM_MODULE}.py"

    # Elsewhere, a module of the same name that would run if zoo looked in the folder.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{keras_files.CUSTOM_MODULE}.py").write_text("raise SystemExit('hijacked')\n")
    photo = str(SAMPLES / "cat.jpg")
    result = run_zoo("predict", "gains", photo, "--json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "hijacked" not in result.stderr
    assert f"runs custom objects {keras_files.CUSTOM_MODULE} from {recorded}" in result.stderr
    assert len(json.loads(result.stdout)[0]["top"]) == 3

    recorded.write_text(recorded.read_text() + "\n# changed\n")
    changed = run_zoo("predict", "gains", photo, cwd=elsewhere)
    assert changed.returncode == 1
    [line] = changed.stderr.splitlines()
    assert line == (
        f"zoo: model 'gains': {recorded} (its custom objects {keras_files.CUSTOM_MODULE}) "
        "changed since zoo import recorded it; import the model again if the change is yours"
    )


def test_custom_objects_that_are_not_one_file_are_refused_at_import():
    import builtins  # built into the interpreter: no file that zoo import could record  # noqa: F401

    with pytest.raises(ImportedModelError, match="--custom-objects builtins: not a module of"):
        imported._recorded(("builtins",))
