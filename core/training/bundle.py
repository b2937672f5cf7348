"""A trained model on disk: a folder with its weights file and a card saying what it is.

``NAME/card.json`` carries what the exported model card carries (labels, preprocessing as
data, input size, weights hashes) plus the base model, the head and the metrics; beside it,
the weights file (the base's weights with the head added, see ``network``), the split
manifest, the full report and a few validation photos an export is verified on. Bundles in
``zoo_home()/bundles`` (and in the folders listed in ``$ZOO_BUNDLES``) are registered as
models by the ``zoo.plugins.bundles`` plugin. Reading a card needs no NumPy or TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import ZooError
from ..files import FolderKind, output_folder
from ..paths import bundles_home, extra_bundle_roots

CARD = "card.json"
FORMAT = "zoo-bundle"
FORMAT_VERSION = 1
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


def read_card(folder: Path) -> dict:
    path = Path(folder) / CARD
    try:
        card = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder}: not a zoo bundle (no {CARD})") from None
    except (OSError, ValueError) as error:
        raise BundleError(f"{path}: unreadable ({error})") from None
    if card.get("format") != FORMAT or card.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: not a zoo bundle card this zoo reads "
            f"(format {card.get('format')!r} version {card.get('format_version')!r})"
        )
    return card


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


def spec_from_bundle(folder: Path, card: dict | None = None):
    """The ``ModelSpec`` of a bundle: built like its base, with the trained head on top."""
    from ..specs import ModelSpec, PreprocessSpec, WeightsSpec

    folder = Path(folder)
    card = card or read_card(folder)
    weights_file = folder / card["weights_file"]
    suffix = ".weights.h5" if weights_file.name.endswith(".weights.h5") else weights_file.suffix
    sha = card["weights_sha256"]
    return ModelSpec(
        name=card["name"],
        build=_Builder(
            card["base"]["model"], len(card["labels"]), card["head"]["dropout"], card["name"]
        ),
        input_size=tuple(card["input_size"]),
        preprocess=PreprocessSpec.from_dict(card["preprocess"]),
        labels=[tuple(pair) for pair in card["labels"]],
        weights=WeightsSpec(
            weights_file.as_uri(), file_hash=sha, file_name=f"zoo-{card['name']}-{sha[:16]}{suffix}"
        ),
        description=card.get("description", ""),
        verification_images=tuple(str(folder / p) for p in card["verification_images"]),
        interpolation=card["interpolation"],
        calibration_images=tuple(str(folder / p) for p in card.get("calibration_images", ())),
    )


class _Builder:
    """``ModelSpec.build`` for a bundle; imports Keras only when called."""

    def __init__(self, base: str, classes: int, dropout: float, name: str):
        self.base, self.classes, self.dropout, self.name = base, classes, dropout, name
        self.__qualname__ = f"zoo bundle on {base}"

    def __call__(self, weights: str | None):
        from ..registry import get_registry
        from .network import build_trained

        base_spec = get_registry().model(self.base)
        return build_trained(base_spec, self.classes, self.dropout, self.name, weights)
