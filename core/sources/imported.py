"""``zoo import``: a user's Keras file kept in zoo's home, a model like a trained one.

``zoo import FILE`` checks and loads the file as every command does (``zoo.sources.keras_file``),
then writes ``zoo_home()/bundles/NAME``: a copy of the file and a card holding what the user
said about it (labels, preprocessing, size, as an ``InputConfig``) and how to load it (custom
objects, Lambda allowed). The bundles plugin registers it from the card alone (no
TensorFlow), ``zoo package NAME`` packages it like a trained model, and its sha256 is checked
against the card's when it is built.

The card is not trusted: its integrity record (``zoo.base.integrity``) covers everything in it
that changes the model's answer (labels and their order, preprocessing, size, output kind, the
file's sha256, the custom objects), so an edited card is refused naming the field. Custom
objects are recorded as the files they were imported from (with their sha256) and imported
from there alone, never from the folder a later command runs in, with a warning naming them.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass
from pathlib import Path

from zoo.base import integrity, jsonio
from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import FolderKind, atomic_directory
from zoo.base.paths import bundles_home
from zoo.base.progress import note
from zoo.base.user_files import CARD_FILE, UserFileError, read_json_file
from zoo.base.version import __version__
from zoo.model.input_config import InputConfig, model_spec
from zoo.model.spec import ModelSpec, WeightsSpec
from zoo.plugin.guard import import_user_file
from zoo.plugin.registry import get_registry
from zoo.sources.keras_file import KerasFile, KerasFileOptions, copy_checked
from zoo.sources.model_file import keras_file_spec, model_name, source_file
from zoo.sources.saved_model import ServingSignature, copy_folder_checked
from zoo.sources.weights import file_digest

CARD = "card.json"
FORMAT = "zoo-keras-file"
FORMAT_VERSION = 2
"""2: an integrity record, and custom objects recorded as files. 1 still reads."""
READABLE_VERSIONS = (1, 2)
KEPT = FolderKind("imported model")


class ImportedModelError(ZooError):
    """A kept model's folder zoo cannot read."""


@dataclass(frozen=True)
class CustomModule:
    """A module of custom Keras classes an imported model needs, as ``zoo import`` found it."""

    module: str
    path: str
    """The file it was imported from, absolute."""
    sha256: str

    def to_dict(self) -> dict:
        return {"module": self.module, "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class ImportedCard:
    """``NAME/card.json`` of an imported model."""

    name: str
    model_file: str
    sha256: str
    source: str
    """The path it was imported from."""
    input: InputConfig
    custom_objects: tuple[CustomModule, ...]
    allow_lambda: bool
    zoo_version: str
    created: str
    format_version: int = FORMAT_VERSION

    def _answer_fields(self) -> dict:
        """What changes the model's answer, each field on its own."""
        return {
            **self.input.to_dict(),
            "sha256": self.sha256,
            "custom_objects": [module.to_dict() for module in self.custom_objects],
            "allow_lambda": self.allow_lambda,
        }

    def to_dict(self) -> dict:
        fields = self._answer_fields()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "source": self.source,
            "input": self.input.to_dict(),
            "custom_objects": fields["custom_objects"],
            "allow_lambda": self.allow_lambda,
            "zoo_version": self.zoo_version,
            "created": self.created,
            "integrity": integrity.record(fields, fields),
        }

    def check_integrity(self, recorded, path: Path) -> None:
        """Refuse a card whose answer-changing fields are not those ``zoo import`` wrote."""
        if self.format_version < 2:
            return  # written before cards carried a record
        fields = self._answer_fields()
        changed = integrity.changed_fields(fields, fields, recorded)
        if changed is not None:
            raise ImportedModelError(
                f"{path}: its {', '.join(changed) or 'settings'} changed since zoo import "
                "wrote it (the integrity check fails); import the file again rather than "
                "edit its card"
            )

    @classmethod
    def from_dict(cls, card: dict) -> ImportedCard:
        return cls(
            name=card["name"],
            model_file=card["model_file"],
            sha256=card["sha256"],
            source=card["source"],
            input=InputConfig.from_dict(card["input"]),
            custom_objects=tuple(
                CustomModule(str(m["module"]), str(m["path"]), str(m["sha256"]))
                if isinstance(m, dict)
                else CustomModule(str(m), "", "")  # format 1: a name, found from the folder
                for m in card["custom_objects"]
            ),
            allow_lambda=bool(card["allow_lambda"]),
            zoo_version=card.get("zoo_version", "?"),
            created=card.get("created", ""),
            format_version=card["format_version"],
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
        if document.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(f"format version {document.get('format_version')!r}")
        card = ImportedCard.from_dict(document)
    except UserFileError as error:
        raise ImportedModelError(f"{path}: unreadable ({error.reason})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ImportedModelError(f"{path}: unreadable ({describe_exception(error)})") from None
    card.check_integrity(document.get("integrity"), path)
    return card


def spec_from_folder(folder: Path) -> ModelSpec:
    """The ``ModelSpec`` of an imported model, from its card alone."""
    folder = Path(folder)
    card = read_card(folder)
    path = folder / card.model_file
    names = tuple(module.module for module in card.custom_objects)
    options = KerasFileOptions(custom_objects=names, allow_lambda=card.allow_lambda)
    if path.is_dir():  # a SavedModel, run as its serving signature
        keras_file = ServingSignature(path.resolve(), card.sha256)
    else:
        keras_file = KerasFile(path.resolve(), card.sha256, options)
    return model_spec(
        card.input,
        name=card.name,
        build=_Builder(card, keras_file),
        weights=WeightsSpec(path.resolve().as_uri(), card.sha256, path.name, in_place=True),
        description=f"imported from {Path(card.source).name}",
    )


class _Builder:
    """``ModelSpec.build`` of an imported model: its custom objects imported from the files
    recorded at import (so that the modules named in its card are found there and nowhere
    else), then the file loaded."""

    def __init__(self, card: ImportedCard, keras_file: KerasFile | ServingSignature):
        self.card, self.keras_file = card, keras_file

    def __call__(self, weights: str | None):
        for module in self.card.custom_objects:
            if module.path:
                _import_recorded(module, self.card.name)
            else:
                note(
                    f"zoo: warning: model {self.card.name!r} imports {module.module} from the "
                    "current folder or the path (its card predates recorded files); import "
                    "the model again to record where"
                )
        return self.keras_file.build(weights)


def _import_recorded(module: CustomModule, model: str) -> None:
    """Import ``module`` from the file recorded at ``zoo import``, refused if it is gone or
    changed; said on stderr, since it runs code."""
    loaded = sys.modules.get(module.module)
    if loaded is not None and getattr(loaded, "__file__", None) == module.path:
        return
    where = Path(module.path)
    try:
        digest = file_digest(where)
    except OSError as error:
        raise ImportedModelError(
            f"model {model!r}: its custom objects {module.module} were imported from "
            f"{where}, which cannot be read now ({describe_exception(error)})"
        ) from None
    if digest != module.sha256:
        raise ImportedModelError(
            f"model {model!r}: {where} (its custom objects {module.module}) changed since zoo "
            "import recorded it; import the model again if the change is yours"
        )
    note(f"zoo: warning: model {model!r} runs custom objects {module.module} from {where}")
    import_user_file(module.module, where, "custom objects")


def _recorded(modules: tuple[str, ...]) -> tuple[CustomModule, ...]:
    """The files the modules of ``--custom-objects`` were just imported from."""
    recorded = []
    for name in modules:
        file = getattr(sys.modules[name], "__file__", None)
        if file is None:  # built in, or a namespace package: no one file to record
            raise ImportedModelError(
                f"--custom-objects {name}: not a module of one file, so zoo import cannot "
                "record where it came from; give the module that registers the file's classes"
            )
        path = Path(file).resolve()
        recorded.append(CustomModule(name, str(path), file_digest(path)))
    return tuple(recorded)


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
    kept = source_file(spec)  # the file; a Keras 2 SavedModel's .h5; a SavedModel folder
    config = registry.input_config(spec)
    card = ImportedCard(
        name=name,
        model_file=f"model{kept.suffix.lower()}",
        sha256=spec.weights.file_hash,
        source=str(path.resolve()),
        input=config,
        custom_objects=_recorded(options.custom_objects),
        allow_lambda=options.allow_lambda,
        zoo_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(destination, KEPT) as folder:
        if kept.is_dir():  # a SavedModel run as its serving signature: the folder loaded
            copy_folder_checked(kept, folder / card.model_file, card.sha256)
        else:
            copy_checked(kept, folder / card.model_file, card.sha256)  # the file loaded
        (folder / CARD).write_text(jsonio.dumps(card.to_dict(), indent=1))
    return {"model": name, "path": str(destination), "sha256": card.sha256}
