"""zoo's cache of verified exports: what the ``onnx`` backend runs and ``--engine ray`` ships.

The first use of a model exports it with zoo's ONNX exporter (which needs TensorFlow), verifies
it against Keras, and keeps it in zoo's home; later uses only need ONNX Runtime. The key holds
everything that changes the file: model, weights (sha256), opset and zoo's version.

The cache is not trusted: the sha256 of each verified export is written beside it
(``NAME.onnx.sha256``) and checked on every use. A file that does not match (changed since it
was verified) or has no recorded hash is exported again, with one line saying why.
"""

from __future__ import annotations

from pathlib import Path

from zoo.base.files import atomic_path
from zoo.base.paths import zoo_home
from zoo.base.progress import note, status
from zoo.base.version import __version__
from zoo.model.spec import ExportOptions, ModelSpec
from zoo.plugin.registry import get_registry
from zoo.sources.weights import file_digest


def cached_export_path(spec: ModelSpec, weights: Path | None, precision: str = "fp32") -> Path:
    """Keyed by model, weights, precision and zoo's version (which fixes the exporter's
    opset)."""
    weights_key = file_digest(weights)[:16] if weights else "random-init"
    variant = "" if precision == "fp32" else f"-{precision}"
    name = f"{spec.name}-{weights_key}{variant}-zoo{__version__}.onnx"
    return zoo_home() / "exports" / name


def cached_export(spec: ModelSpec, weights: Path | None, precision: str = "fp32") -> Path:
    """The cached verified export of ``spec`` with ``weights`` at ``precision`` (a lower one:
    its agreement with float32 verified as ``zoo export --precision`` does): made when
    missing, made again when it is not the file that was verified."""
    path = cached_export_path(spec, weights, precision)
    if path.is_file():
        problem = cache_problem(path)
        if problem is None:
            return path
        note(f"zoo: the cached export {path} is not usable: {problem}; exporting it again")
    else:
        status(f"first use of {spec.name} on ONNX Runtime: exporting to {path}")
    export_again(spec, weights, path, precision)
    return path


def export_again(
    spec: ModelSpec, weights: Path | None, path: Path, precision: str = "fp32"
) -> None:
    """Export through the registered ``onnx`` exporter (zoo's own plugin, or one that replaces
    it), which verifies the file before it is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter = get_registry().exporter("onnx")
    exporter.export(spec, path, ExportOptions(weights=str(weights or "none"), precision=precision))
    record_digest(path)


def digest_path(path: Path) -> Path:
    """Where the sha256 of a cached export is recorded: beside it."""
    return path.with_name(f"{path.name}.sha256")


def record_digest(path: Path) -> None:
    with atomic_path(digest_path(path)) as temporary:
        temporary.write_text(f"{file_digest(path)}\n")


def cache_problem(path: Path) -> str | None:
    """Why the cached export at ``path`` cannot be trusted, or None if it is the file that was
    verified when it was written."""
    try:
        recorded = digest_path(path).read_text().strip()
    except FileNotFoundError:
        return "no sha256 was recorded for it"
    except (OSError, UnicodeDecodeError) as error:
        return f"its recorded sha256 cannot be read ({error})"
    if file_digest(path) != recorded:
        return "its sha256 differs from the one recorded when it was verified (it was changed)"
    return None
