"""The ``onnx`` exporter (the work is in ``zoo.exporters``)."""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.model.spec import ExporterSpec, ExportOptions, ModelSpec


def export(spec: ModelSpec, output: Path, options: ExportOptions):
    """``zoo.exporters.onnx.export``, imported when an export runs rather than when zoo starts."""
    from zoo.exporters.onnx import export

    return export(spec, output, options)


@hookimpl
def register_exporters(register):
    register(
        ExporterSpec(
            "onnx", export=export, description="ONNX, verified against Keras on real photos"
        )
    )
