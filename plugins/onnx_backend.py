"""The ``onnx`` backend: a registered model on ONNX Runtime, through a cached verified export.

The first use of a model exports it with zoo's ONNX exporter (which needs TensorFlow), verifies
it against Keras, and keeps it in zoo's cache; later uses only need ONNX Runtime. The cache key
holds everything that changes the file: model, weights (sha256), opset and zoo's version.
ONNX Runtime and the exporter are imported when a model is loaded, not when zoo starts.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.paths import zoo_home
from zoo.progress import status
from zoo.specs import Backend, ExportOptions, LoadOptions, ModelSpec, Runner
from zoo.version import __version__
from zoo.weights import file_digest


def cached_export_path(spec: ModelSpec, weights: Path | None, opset: int) -> Path:
    weights_key = file_digest(weights)[:16] if weights else "random-init"
    name = f"{spec.name}-{weights_key}-opset{opset}-zoo{__version__}.onnx"
    return zoo_home() / "exports" / name


class OnnxBackend(Backend):
    name = "onnx"
    description = "ONNX Runtime (CUDA when usable, else CPU), on a cached verified export"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> Runner:
        from zoo.exporters.onnx import DEFAULT_OPSET, export_onnx
        from zoo.onnx_file import load_onnx

        path = cached_export_path(spec, weights, DEFAULT_OPSET)
        if not path.is_file():
            status(f"first use of {spec.name} on ONNX Runtime: exporting to {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(spec, path, ExportOptions(weights=str(weights or "none")))
        return load_onnx(path, options.provider, options.threads).runner


@hookimpl
def register_backends(register):
    register(OnnxBackend())
