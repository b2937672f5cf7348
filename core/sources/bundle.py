"""A trained model on disk: a folder with its weights file and a card saying what it is.

``NAME/card.json`` carries what the exported model card carries (labels, preprocessing as
data, input size, weights hashes) plus the base model, the head and the metrics; beside it,
the weights file (the base's weights with the head added, see ``network``), the split
manifest, the full report and a few validation photos an export is verified on. Bundles in
``zoo_home()/bundles`` (and in the folders listed in ``$ZOO_BUNDLES``) are registered as
models by the ``zoo.plugins.bundles`` plugin. Reading a card needs no NumPy or TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from zoo.base import integrity, jsonio
from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import FolderKind, output_folder
from zoo.base.paths import bundles_home, extra_bundle_roots
from zoo.base.user_files import CARD_FILE, MissingFile, UserFileError, read_json_file
from zoo.model.input_config import InputConfig

CARD = "card.json"
MANIFEST = "manifest.json"
FORMAT = "zoo-bundle"
FORMAT_VERSION = 2
"""2: the input settings as one ``InputConfig`` and an integrity hash; 1 is still read."""
READABLE_VERSIONS = (1, 2)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class BundleError(ZooError):
    """A bundle folder that zoo cannot read, or a name it cannot use."""


def destination(output: str | os.PathLike) -> tuple[Path, str]:
    """Where ``-o`` puts a bundle, and the model's name: a bare NAME goes to zoo's home
    (``zoo_home()/bundles/NAME``), anything with a folder in it is a path (named after its
    last part)."""
    text = str(output)
    output_folder(text)  # refuses a blank name, as every folder option does
    is_path = os.sep in text or "/" in text or text.startswith((".", "~"))
    path = Path(text).expanduser() if is_path else bundles_home() / text
    name = path.name
    if not _NAME.match(name):
        raise BundleError(
            f"{name!r} cannot name a model: use lowercase letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    if is_path and not path.parent.is_dir():
        raise BundleError(f"{path}: folder {path.parent} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, name


@dataclass(frozen=True)
class BaseRecord:
    """The model a bundle was trained on, and the weights it started from."""

    model: str
    weights: str
    """As asked for: "imagenet", "none" or a file's path."""
    weights_sha256: str | None


@dataclass(frozen=True)
class BundleCard:
    """``NAME/card.json``: what a trained model is. One writer (``write``), one reader
    (``read_card``), which also reads version-1 cards (input settings at the top level, no
    integrity hash).

    Its integrity record (``zoo.base.integrity``) is the sha256 of what changes the model's
    answer besides its weights file (which has its own sha256): the input settings (labels
    and their order, preprocessing, size, resize filter), the base, the head and the mode. A
    card edited by hand no longer matches it and is refused, naming the field that was
    changed where it can tell.
    """

    name: str
    description: str
    base: BaseRecord
    input: InputConfig
    dropout: float
    mode: str
    weights_file: str
    weights_sha256: str
    verification_images: tuple[str, ...]
    calibration_images: tuple[str, ...]
    metrics: dict
    zoo_version: str
    created: str

    def _answer_fields(self) -> dict:
        return {
            "input": self.input.to_dict(),
            "base": {"model": self.base.model, "weights_sha256": self.base.weights_sha256},
            "head": {"dropout": self.dropout},
            "mode": self.mode,
        }

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "description": self.description,
            "base": dataclasses.asdict(self.base),
            "input": self.input.to_dict(),
            "head": {"dropout": self.dropout},
            "mode": self.mode,
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
            "verification_images": list(self.verification_images),
            "calibration_images": list(self.calibration_images),
            "metrics": self.metrics,
            "zoo_version": self.zoo_version,
            "created": self.created,
            "integrity": integrity.record(self._answer_fields(), self._fields()),
        }

    def _fields(self) -> dict:
        """Each answer-changing field on its own, so that a mismatch can be named."""
        fields = {**self.input.to_dict(), **self._answer_fields()}
        del fields["input"]
        return fields

    def write(self, folder: Path) -> None:
        (folder / CARD).write_text(dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, card: dict) -> BundleCard:
        """``KeyError``, ``TypeError`` or ``ValueError`` for a card that lacks or garbles a
        field; integrity is checked by ``read_card``."""
        version = card["format_version"]
        if version == 1:  # the input settings at the top level
            config = {key: card[key] for key in ("preprocess", "labels", "interpolation")}
            config["size"] = card["input_size"]
        else:
            config = card["input"]
        base = card["base"]
        return cls(
            name=card["name"],
            description=card.get("description", ""),
            base=BaseRecord(base["model"], str(base["weights"]), base["weights_sha256"]),
            input=InputConfig.from_dict(config),
            dropout=float(card["head"]["dropout"]),
            mode=card["mode"],
            weights_file=card["weights_file"],
            weights_sha256=card["weights_sha256"],
            verification_images=tuple(card["verification_images"]),
            calibration_images=tuple(card.get("calibration_images", ())),
            metrics=card.get("metrics", {}),
            zoo_version=card.get("zoo_version", "?"),
            created=card.get("created", ""),
        )


def dumps(document: dict) -> str:
    """A bundle's records as they are written: strict JSON, one level per line."""
    return jsonio.dumps(document, indent=1)


def read_card(folder: Path) -> BundleCard:
    """The card of the bundle in ``folder``, refused (``BundleError``, one line naming the
    field) when it is unreadable, garbled, edited since it was written, or disagrees with the
    bundle's manifest or its base's graph."""
    path = Path(folder) / CARD
    try:
        document = read_json_file(path, CARD_FILE)
    except MissingFile:
        raise BundleError(f"{folder}: not a zoo bundle (no {CARD})") from None
    except UserFileError as error:
        raise BundleError(f"{path}: unreadable ({error.reason})") from None
    version = document.get("format_version") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or (version not in READABLE_VERSIONS)
    ):
        raise BundleError(
            f"{path}: not a zoo bundle card this zoo reads (format "
            f"{document.get('format') if isinstance(document, dict) else None!r} "
            f"version {version!r})"
        )
    try:
        card = BundleCard.from_dict(document)
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{path}: bad card ({describe_exception(error)})") from None
    if version >= 2:
        _check_integrity(card, document.get("integrity"), path)
    _check_manifest(card, Path(folder), path)
    return card


def _check_integrity(card: BundleCard, recorded, path: Path) -> None:
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        raise BundleError(f"{path}: has no integrity record; it was not written by zoo train")
    changed = integrity.changed_fields(card._answer_fields(), card._fields(), recorded)
    if changed is None:
        return
    raise BundleError(
        f"{path}: its {', '.join(changed) or 'settings'} changed since zoo train wrote it "
        "(the integrity check fails); train the model again rather than edit its card"
    )


def _check_manifest(card: BundleCard, folder: Path, path: Path) -> None:
    """The labels, in order, are the classes the head was trained on, which the split
    manifest lists."""
    try:
        classes = json.loads((folder / MANIFEST).read_text("utf-8"))["classes"]
    except FileNotFoundError:
        return  # a package's bundle, or one copied without it: the integrity check covers it
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = describe_exception(error)
        raise BundleError(f"{folder / MANIFEST}: unreadable ({reason})") from None
    labels = [label for _, label in card.input.labels]
    if labels != classes:
        raise BundleError(
            f"{path}: its labels {labels} differ from the classes the model was trained on, "
            f"in order, {classes} ({MANIFEST})"
        )


def distribution_key(name: str) -> str:
    """What a model's name becomes in its package's distribution name: pip treats ``.``,
    ``-`` and ``_`` alike, so ``a.b``, ``a-b`` and ``a_b`` would be one distribution."""
    return re.sub(r"[^a-z0-9]+", "-", name)


def check_distribution_clash(name: str, others) -> None:
    """Refuse ``name`` when another model's name in ``others`` makes the same distribution:
    installing one package would silently uninstall the other."""
    for other in others:
        if other != name and distribution_key(other) == distribution_key(name):
            raise BundleError(
                f"{name!r} and the model {other!r} would both be packaged as "
                f"zoo-model-{distribution_key(name)}; choose another name"
            )


def bundle_folders() -> list[Path]:
    """Every bundle zoo registers: those in zoo's home, then those ``$ZOO_BUNDLES`` lists
    (``os.pathsep``-separated; each a bundle folder or a folder of bundles)."""
    roots = [bundles_home(), *extra_bundle_roots()]
    found = []
    for root in roots:
        if (root / CARD).is_file():
            found.append(root)
        elif root.is_dir():
            found += sorted(p for p in root.iterdir() if (p / CARD).is_file())
    return found


def _is_readable_bundle(folder: Path) -> bool:
    try:
        read_card(folder)
    except BundleError:
        return False
    return True


BUNDLE = FolderKind("bundle", recognises=_is_readable_bundle)
"""A bundle folder: ``zoo train -o`` replaces one it wrote (or one it can read), nothing else."""


def spec_from_folder(folder: Path):
    """The ``ModelSpec`` of a folder in zoo's bundles: a trained model, or an imported file."""
    from zoo.sources import imported as imported_model

    if imported_model.is_imported(folder):
        return imported_model.spec_from_folder(folder)
    return spec_from_bundle(folder)


def spec_from_bundle(folder: Path, card: BundleCard | None = None):
    """The ``ModelSpec`` of a bundle: built like its base, with the trained head on top."""
    from zoo.model.input_config import model_spec
    from zoo.model.spec import WeightsSpec

    folder = Path(folder)
    card = card or read_card(folder)
    weights_file = folder / card.weights_file
    suffix = ".weights.h5" if weights_file.name.endswith(".weights.h5") else weights_file.suffix
    sha = card.weights_sha256
    return model_spec(
        card.input,
        name=card.name,
        build=_Builder(card.base.model, len(card.input.labels), card.dropout, card.name),
        weights=WeightsSpec(
            weights_file.as_uri(), file_hash=sha, file_name=f"zoo-{card.name}-{sha[:16]}{suffix}"
        ),
        description=card.description,
        verification_images=tuple(str(folder / p) for p in card.verification_images),
        calibration_images=tuple(str(folder / p) for p in card.calibration_images),
    )


def is_trained(spec) -> bool:
    """Whether ``spec`` is a bundle's (``spec_from_bundle``'s), whoever registered it: a new
    training run may replace a trained model of its name, never another kind of model."""
    return isinstance(spec.build, _Builder)


class _Builder:
    """``ModelSpec.build`` for a bundle; imports Keras only when called."""

    def __init__(self, base: str, classes: int, dropout: float, name: str):
        self.base, self.classes, self.dropout, self.name = base, classes, dropout, name
        self.__qualname__ = f"zoo bundle on {base}"

    def __call__(self, weights: str | None):
        from zoo.sources.bundle_network import build_trained
        from zoo.sources.resolver import model_to_build

        base_spec = model_to_build(self.base)
        return build_trained(base_spec, self.classes, self.dropout, self.name, weights)
