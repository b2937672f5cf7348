"""The ``opencv`` backend: a registered model's verified export (zoo's cache), or a .onnx file,
on OpenCV DNN (``pip install 'zoo[opencv]'``), in float32 on the CPU. OpenCV is imported when a
model is loaded, not when zoo starts.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.base.errors import BackendUnavailable
from zoo.model.spec import Backend, LoadOptions, ModelSpec, Runner
from zoo.sources.export_cache import cached_export


class OpenCvBackend(Backend):
    name = "opencv"
    description = "OpenCV DNN (CPU, fp32), on a cached verified export"

    def load(self, spec: ModelSpec, weights: Path | None, options: LoadOptions) -> Runner:
        return self.load_file(cached_export(spec, weights), options)

    def load_file(self, path: Path, options: LoadOptions) -> Runner:
        from zoo.runtime.opencv_file import load_opencv

        if options.provider not in ("auto", "cpu"):
            raise BackendUnavailable(
                f"the opencv backend runs on the CPU; --provider {options.provider} is for onnx"
            )
        return load_opencv(path, options.precision, options.threads).runner


@hookimpl
def register_backends(register):
    register(OpenCvBackend())
