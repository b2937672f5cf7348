"""``zoo verify``: an exported ``.onnx`` checked against Keras on real photos (the work is in
``zoo.exporters.verify_file``)."""

from __future__ import annotations

from pathlib import Path

from zoo.cli.options import MODEL_HELP, add_json, add_keras_file_options, option_groups


def add_command(commands) -> None:
    command = commands.add_parser(
        "verify", help="check an exported .onnx against Keras on real photos"
    )
    command.add_argument("model", help=MODEL_HELP)
    command.add_argument("onnx", type=Path, help="the exported .onnx file")
    inputs, model = option_groups(command, "input", "model")
    inputs.add_argument("--images", metavar="DIR", help="also verify on the photos in this folder")
    model.add_argument(
        "--weights", help="Keras weights to compare with (default: those the file was made from)"
    )
    add_keras_file_options(command, "model")
    [output] = option_groups(command, "output")
    add_json(output, "print the report as JSON")
    command.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from zoo.base.printing import print_json
    from zoo.exporters.verify_file import verify_file
    from zoo.model.labels import resolve_labels
    from zoo.plugin.registry import get_registry
    from zoo.runtime.samples import image_files

    spec = get_registry().model(args.model)
    images = image_files(Path(args.images)) if args.images else []
    report = verify_file(spec, args.onnx, args.weights, images)
    if args.json:
        print_json(report.to_dict())
    report.raise_for_failure(resolve_labels(spec.labels))
    if not args.json:
        print(f"{args.onnx}: {report.summary()}")
    return 0
