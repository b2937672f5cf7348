"""The ``onnx`` backend: a registered model on ONNX Runtime, through zoo's cache of verified
exports (``zoo.sources.export_cache``). ONNX Runtime is imported when a model is loaded, not
when zoo starts; a cached file ONNX Runtime cannot load is exported again, with one line saying why.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.base.errors import BackendUnavailable
from zoo.base.progress import note
from zoo.exporters.precision import PRECISIONS
from zoo.model.spec import Backend, LoadOptions, ModelSpec, Runner
from zoo.sources.export_cache import cached_export, export_again


class OnnxBackend(Backend):
    name = "onnx"
    description = "ONNX Runtime (CUDA when usable, else CPU), on a cached verified export"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> Runner:
        from zoo.runtime.onnx_file import ModelFileError, load_onnx

        precision = options.precision or "fp32"
        if precision not in PRECISIONS:
            raise BackendUnavailable(
                f"ONNX Runtime runs zoo's {', '.join(PRECISIONS)} exports, not {precision} "
                "(bf16: --backend openvino)"
            )
        path = cached_export(spec, weights, precision)
        try:
            return load_onnx(
                path, options.provider, options.threads, options.varying_batches
            ).runner
        except ModelFileError as error:
            note(
                f"zoo: the cached export {path} is not usable: ONNX Runtime cannot load it "
                f"({error}); exporting it again"
            )
            export_again(spec, weights, path, precision)
            return load_onnx(
                path, options.provider, options.threads, options.varying_batches
            ).runner


@hookimpl
def register_backends(register):
    register(OnnxBackend())
