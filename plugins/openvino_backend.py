"""The ``openvino`` backend: a registered model's verified export (zoo's cache), or a .onnx file,
on OpenVINO's own runtime (``pip install 'zoo[openvino]'``), computing in the precision asked
for (fp32 unless told; bf16 or fp16 only where the CPU has them). OpenVINO is imported when a
model is loaded, not when zoo starts.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.base.errors import BackendUnavailable
from zoo.model.spec import Backend, LoadOptions, ModelSpec, Runner
from zoo.sources.export_cache import cached_export


class OpenVinoBackend(Backend):
    name = "openvino"
    description = "OpenVINO (CPU), fp32 or the CPU's native bf16/fp16, on a cached verified export"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> Runner:
        return self.load_file(cached_export(spec, weights), options)

    def load_file(self, path: Path, options: LoadOptions) -> Runner:
        from zoo.runtime.openvino_file import load_openvino

        if options.provider not in ("auto", "cpu"):
            raise BackendUnavailable(
                f"the openvino backend runs on the CPU; --provider {options.provider} is for onnx"
            )
        return load_openvino(path, options.precision, options.threads).runner


@hookimpl
def register_backends(register):
    register(OpenVinoBackend())
