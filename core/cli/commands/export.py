"""``zoo export``: a model as a deployable artifact (ONNX), verified against Keras."""

from __future__ import annotations

from pathlib import Path

from zoo.base.errors import ZooError
from zoo.base.files import output_folder
from zoo.base.printing import print_json
from zoo.cli.options import (
    MODEL_HELP,
    add_deprecated,
    add_json,
    add_keras_file_options,
    add_weights,
    option_groups,
    positive_int,
)
from zoo.model.spec import ExportOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.samples import image_files


def add_command(commands) -> None:
    export = commands.add_parser("export", help="export a model (ONNX), verified against Keras")
    export.add_argument("model", help=MODEL_HELP)
    [model] = option_groups(export, "model")
    add_weights(model)
    add_keras_file_options(export, "model")
    exported, verification, output = option_groups(export, "export", "verification", "output")
    output_format = exported.add_argument(
        "--format", default="onnx", help="exporter name: onnx (default), a plugin's"
    )
    add_deprecated(exported, "--onnx", output_format, "onnx")
    exported.add_argument(
        "--opset", type=positive_int, default=None, help="ONNX opset (default: the exporter's)"
    )
    batch_dim = exported.add_argument(
        "--batch-dim",
        type=_batch_size,
        default=None,
        metavar="dynamic|N",
        help="the model's batch dimension: dynamic (default) or a fixed size",
    )
    add_deprecated(exported, "--batch", batch_dim)
    precision = exported.add_argument(
        "--precision",
        default="fp32",
        metavar="fp32|fp16|int8|int8-vnni",
        help="fp32 (default, verified exact); int8 (static quantization with 7-bit weights: "
        "the same answers on AVX2 and VNNI CPUs), int8-vnni (8-bit weights: only for CPUs "
        "with VNNI) or fp16 (for GPUs), with their agreement with Keras measured and reported",
    )
    add_deprecated(exported, "--quantize", precision, choices=["int8"])
    exported.add_argument(
        "--calibration",
        metavar="DIR",
        help="photos to calibrate int8 on (default: zoo's sample photos); a few hundred "
        "like those the model will see work best",
    )
    exported.add_argument(
        "--embed-preprocessing",
        action="store_true",
        help="take raw uint8 RGB pixels and preprocess inside the graph",
    )
    exported.add_argument(
        "--layout",
        choices=["nhwc", "nchw"],
        default="nhwc",
        help="the image input's layout: nhwc (default, as Keras) or nchw (channels first, as "
        "TensorRT, DeepStream and OpenCV DNN feed images); recorded in the file's card",
    )
    exported.add_argument(
        "--top-k",
        type=positive_int,
        metavar="K",
        help="add top_k_scores and top_k_indices outputs (the K best classes)",
    )
    verification.add_argument(
        "--images", metavar="DIR", help="also verify on the photos in this folder"
    )
    verification.add_argument("--no-verify", action="store_true", help="skip the verification")
    output.add_argument(
        "-o", "--output", metavar="FILE", help="the file to write (default: ./MODEL.onnx)"
    )
    output.add_argument(
        "--triton",
        metavar="DIR",
        help="write a Triton model repository entry DIR/MODEL instead of -o",
    )
    add_json(output)
    export.set_defaults(run=run)


def run(args) -> int:
    registry = get_registry()
    spec = registry.model(args.model)
    exporter = registry.exporter(args.format)
    if args.triton is not None and args.output:
        raise ZooError("give -o or --triton, not both: --triton DIR decides where the model goes")
    output = Path(args.output or f"{spec.name}.{args.format}")
    options = ExportOptions(
        weights=args.weights,
        opset=args.opset,
        batch=args.batch_dim,
        images=tuple(image_files(Path(args.images))) if args.images else (),
        verify=not args.no_verify,
        embed_preprocessing=args.embed_preprocessing,
        top_k=args.top_k,
        layout=args.layout,
        precision=args.precision,
        calibration=tuple(image_files(Path(args.calibration))) if args.calibration else (),
        triton=None if args.triton is None else output_folder(args.triton),
    )
    result = exporter.export(spec, output, options)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0


def _batch_size(text: str) -> int | None:
    return None if text == "dynamic" else positive_int(text)
