"""``zoo package``: a trained model as a pip-installable zoo plugin distribution.

The distribution has the shape of ``examples/zoo-plugin-shapes``: a ``pyproject.toml`` with
the ``zoo`` entry point, one module whose ``register_models`` registers the model, and the
bundle (card, weights, validation photos, report) inside the package as data, so the model
works wherever zoo and the base model are installed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from zoo.base.errors import ZooError
from zoo.base.files import FolderKind, atomic_directory, check_replaceable, output_folder
from zoo.base.version import __version__
from zoo.plugin.registry import get_registry
from zoo.sources import imported as imported_model
from zoo.sources.bundle import (
    CARD,
    BundleCard,
    bundle_folders,
    check_distribution_clash,
    distribution_key,
    read_card,
)

BUILT_IN_BASES = {"vgg16", "resnet50", "inception_v3", "mobilenet"}
PACKAGE = FolderKind("package")
"""A distribution folder ``zoo package`` wrote: the only non-empty folder ``-o`` replaces."""

MODULE = '''"""zoo plugin: {name}, {description}.

Registers the model kept in ``bundle/`` (made by ``zoo train`` or ``zoo import``, packaged
by ``zoo package``).
"""

from pathlib import Path

import zoo
from zoo.sources.bundle import spec_from_folder

BUNDLE = Path(__file__).with_name("bundle")


@zoo.hookimpl
def register_models(register):
    register(spec_from_folder(BUNDLE))
'''

PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"
description = "A zoo model: {description}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["zoo>={zoo_version}"]

[project.entry-points.zoo]
{name_key} = "{module}"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools.package-data]
{module} = ["bundle/**/*"]  # every file, a kept SavedModel folder's included
"""


def find_bundle(name: str) -> Path:
    for folder in bundle_folders():
        if _card(folder).name == name:
            return folder
    raise ZooError(
        f"no trained or imported model named {name!r} (zoo package works on models from "
        "zoo train and zoo import)"
    )


def _card(folder: Path) -> BundleCard | imported_model.ImportedCard:
    if imported_model.is_imported(folder):
        return imported_model.read_card(folder)
    return read_card(folder)


def write_package(name: str, output: str | Path) -> dict:
    folder = find_bundle(name)
    card = _card(folder)
    imported = isinstance(card, imported_model.ImportedCard)
    description = f"imported from {Path(card.source).name}" if imported else card.description
    output = output_folder(output)
    check_replaceable(output, PACKAGE)
    if not output.parent.is_dir():
        raise ZooError(f"{output}: folder {output.parent} does not exist")
    check_distribution_clash(name, get_registry().models)
    module = "zoo_model_" + re.sub(r"[^a-z0-9]", "_", name)
    distribution = "zoo-model-" + distribution_key(name)
    fields = {
        "name": name,
        "name_key": module,
        "module": module,
        "distribution": distribution,
        "description": description,
        "zoo_version": __version__,
    }
    with atomic_directory(output, PACKAGE) as temporary:
        package = temporary / module
        shutil.copytree(folder, package / "bundle", ignore=shutil.ignore_patterns(".*"))
        (package / "__init__.py").write_text(MODULE.format(**fields))
        (temporary / "pyproject.toml").write_text(PYPROJECT.format(**fields))
        readme = _imported_readme(card, distribution) if imported else _readme(card, distribution)
        (temporary / "README.md").write_text(readme)
    return {"distribution": distribution, "module": module, "path": str(output), "model": name}


def _usage(name: str, distribution: str) -> str:
    return f"""```
pip install .
zoo list
zoo predict {name} photo.jpg
zoo check-plugin {distribution}
```
"""


def _imported_readme(card: imported_model.ImportedCard, distribution: str) -> str:
    classes = ", ".join(label for _, label in card.input.labels)
    return f"""# {distribution}

A zoo plugin with one model, **{card.name}**: the Keras file {Path(card.source).name}
(sha256 `{card.sha256}`), kept by `zoo import`.

- input: {card.input.size[0]}x{card.input.size[1]} pixels, \
  preprocessing `{card.input.preprocess.name}`, the graph ends in {card.input.output}
- classes ({len(card.input.labels)}): {classes}

{_usage(card.name, distribution)}"""


def _readme(card: BundleCard, distribution: str) -> str:
    metrics = card.metrics
    base = card.base.model
    needs = (
        ""
        if base in BUILT_IN_BASES
        else f"\nIts base model, `{base}`, comes from another zoo plugin: install that too.\n"
    )
    classes = ", ".join(label for _, label in card.input.labels)
    return f"""# {distribution}

A zoo plugin with one model, **{card.name}**: {card.description}.

- base model: `{base}` (weights sha256 `{card.base.weights_sha256}`), {card.mode} mode
- input: {card.input.size[0]}x{card.input.size[1]} pixels, \
  preprocessing `{card.input.preprocess.name}`
- classes ({len(card.input.labels)}): {classes}
- validation: top-1 {metrics["top1"]:.4f} on {metrics["images"]} images (majority-class
  baseline {metrics["baseline_top1"]:.4f}), macro-F1 {metrics["macro_f1"]:.4f}
{needs}
{_usage(card.name, distribution)}
In the package's `bundle/` folder: `{CARD}` (the model card), `report.json` (the full
training report) and `manifest.json` (the training split).
"""
