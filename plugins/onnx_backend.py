"""The ``onnx`` backend: a registered model on ONNX Runtime, through a cached verified export.

The first use of a model exports it with zoo's ONNX exporter (which needs TensorFlow), verifies
it against Keras, and keeps it in zoo's cache; later uses only need ONNX Runtime. The cache key
holds everything that changes the file: model, weights (sha256), opset and zoo's version.
"""

from __future__ import annotations

from pathlib import Path

from zoo import __version__, hookimpl
from zoo.onnx_file import OnnxRunner, load_onnx
from zoo.paths import zoo_home
from zoo.progress import status
from zoo.specs import Backend, ModelSpec
from zoo.weights import file_digest


def cached_export_path(spec: ModelSpec, weights: Path | None, opset: int) -> Path:
    weights_key = file_digest(weights)[:16] if weights else "random-init"
    name = f"{spec.name}-{weights_key}-opset{opset}-zoo{__version__}.onnx"
    return zoo_home() / "exports" / name


class OnnxBackend(Backend):
    name = "onnx"
    description = "ONNX Runtime (CUDA when usable, else CPU), on a cached verified export"

    def load(
        self, spec: ModelSpec, weights: Path | None, provider: str = "auto", threads: int = 0
    ) -> OnnxRunner:
        from zoo.exporters.onnx import DEFAULT_OPSET, export_onnx

        path = cached_export_path(spec, weights, DEFAULT_OPSET)
        if not path.is_file():
            status(f"first use of {spec.name} on ONNX Runtime: exporting to {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(spec, path, weights=weights or "none", opset=DEFAULT_OPSET)
        return load_onnx(path, provider, threads).runner


@hookimpl
def register_backends(register):
    register(OnnxBackend())
