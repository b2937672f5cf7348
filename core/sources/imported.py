"""``zoo import``: a user's Keras file kept in zoo's home, a model like a trained one.

``zoo import FILE`` checks and loads the file as every command does (``zoo.sources.keras_file``),
then writes ``zoo_home()/bundles/NAME``: a copy of the file and a card holding what the user
said about it (labels, preprocessing, size, as an ``InputConfig``) and how to load it (custom
objects, Lambda allowed). The bundles plugin registers it from the card alone (no
TensorFlow), ``zoo package NAME`` packages it like a trained model, and its sha256 is checked
against the card's when it is built.
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path

from zoo.base import jsonio
from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import FolderKind, atomic_directory
from zoo.base.paths import bundles_home
from zoo.base.user_files import CARD_FILE, UserFileError, read_json_file
from zoo.base.version import __version__
from zoo.model.input_config import InputConfig, model_spec
from zoo.model.spec import ModelSpec, WeightsSpec
from zoo.plugin.registry import get_registry
from zoo.sources.keras_file import (
    KerasFile,
    KerasFileOptions,
    keras_file_spec,
    model_name,
    source_file,
)

CARD = "card.json"
FORMAT = "zoo-keras-file"
FORMAT_VERSION = 1
KEPT = FolderKind("imported model")


class ImportedModelError(ZooError):
    """A kept model's folder zoo cannot read."""


@dataclass(frozen=True)
class ImportedCard:
    """``NAME/card.json`` of an imported model."""

    name: str
    model_file: str
    sha256: str
    source: str
    """The path it was imported from."""
    input: InputConfig
    custom_objects: tuple[str, ...]
    allow_lambda: bool
    zoo_version: str
    created: str

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "source": self.source,
            "input": self.input.to_dict(),
            "custom_objects": list(self.custom_objects),
            "allow_lambda": self.allow_lambda,
            "zoo_version": self.zoo_version,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, card: dict) -> ImportedCard:
        return cls(
            name=card["name"],
            model_file=card["model_file"],
            sha256=card["sha256"],
            source=card["source"],
            input=InputConfig.from_dict(card["input"]),
            custom_objects=tuple(card["custom_objects"]),
            allow_lambda=bool(card["allow_lambda"]),
            zoo_version=card.get("zoo_version", "?"),
            created=card.get("created", ""),
        )


def is_imported(folder: Path) -> bool:
    """Whether ``folder`` holds an imported model (rather than a trained one)."""
    try:
        return read_json_file(Path(folder) / CARD, CARD_FILE).get("format") == FORMAT
    except (UserFileError, AttributeError):
        return False


def read_card(folder: Path) -> ImportedCard:
    path = Path(folder) / CARD
    try:
        document = read_json_file(path, CARD_FILE)
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {document.get('format_version')!r}")
        return ImportedCard.from_dict(document)
    except UserFileError as error:
        raise ImportedModelError(f"{path}: unreadable ({error.reason})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ImportedModelError(f"{path}: unreadable ({describe_exception(error)})") from None


def spec_from_folder(folder: Path) -> ModelSpec:
    """The ``ModelSpec`` of an imported model, from its card alone."""
    folder = Path(folder)
    card = read_card(folder)
    path = folder / card.model_file
    options = KerasFileOptions(custom_objects=card.custom_objects, allow_lambda=card.allow_lambda)
    return model_spec(
        card.input,
        name=card.name,
        build=KerasFile(path.resolve(), card.sha256, options).build,
        weights=WeightsSpec(path.resolve().as_uri(), card.sha256, path.name, in_place=True),
        description=f"imported from {Path(card.source).name}",
    )


def import_file(path: Path, options: KerasFileOptions) -> dict:
    """Check and load ``path`` as every command does, then keep it in zoo's home under its
    name; what was written, for ``--json``."""
    path = Path(path)
    name = model_name(path, options)
    registry = get_registry()
    existing = registry.models.get(registry.aliases.get(name, name))
    owner = registry.owners.get(("model", name))
    if existing is not None and owner != "zoo.plugins.bundles":
        raise ImportedModelError(f"--name {name}: plugin {owner!r} registers a model of that name")
    destination = bundles_home() / name
    if existing is not None and not is_imported(destination):
        raise ImportedModelError(f"--name {name}: a trained model has that name; choose another")
    spec = keras_file_spec(path, options, registry.preprocessors)
    kept = source_file(spec)  # the file itself; a SavedModel folder's .h5
    config = registry.input_config(spec)
    card = ImportedCard(
        name=name,
        model_file=f"model{kept.suffix.lower()}",
        sha256=spec.weights.file_hash,
        source=str(path.resolve()),
        input=config,
        custom_objects=options.custom_objects,
        allow_lambda=options.allow_lambda,
        zoo_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(destination, KEPT) as folder:
        shutil.copyfile(kept, folder / card.model_file)
        (folder / CARD).write_text(jsonio.dumps(card.to_dict(), indent=1))
    return {"model": name, "path": str(destination), "sha256": card.sha256}
