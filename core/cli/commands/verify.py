"""``zoo verify``: an exported ``.onnx`` checked against Keras on real photos (the work is in
``zoo.exporters.verify_file``), or, with ``--endpoint``, a model deployed behind an Open
Inference Protocol server checked against its source (``zoo.exporters.endpoint``)."""

from __future__ import annotations

from pathlib import Path

from zoo.base.errors import ZooError
from zoo.cli.options import (
    MODEL_HELP,
    add_deprecated,
    add_json,
    add_keras_file_options,
    comma_list,
    number_between,
    option_groups,
)


def add_command(commands) -> None:
    command = commands.add_parser(
        "verify", help="check an exported .onnx, or a served model, against its source on photos"
    )
    command.add_argument("model", help=MODEL_HELP)
    command.add_argument(
        "onnx", type=Path, nargs="?", help="the exported .onnx file (not with --endpoint)"
    )
    inputs, model = option_groups(command, "input", "model")
    inputs.add_argument("--images", metavar="DIR", help="also verify on the photos in this folder")
    model.add_argument(
        "--weights", help="Keras weights to compare with (default: those the file was made from)"
    )
    add_keras_file_options(command, "model")
    add_endpoint_options(command)
    add_runtime_options(command)
    [output] = option_groups(command, "output")
    add_json(output, "print the report as JSON")
    command.set_defaults(run=_run_verify)


def add_endpoint_options(command) -> None:
    """``--endpoint URL`` and what goes with it (issue 34)."""
    [endpoint] = option_groups(command, "endpoint")
    endpoint.add_argument(
        "--endpoint",
        metavar="URL",
        help="an Open Inference Protocol (v2) server to check instead of a file, e.g. "
        "http://127.0.0.1:8000 (Triton, KServe, MLServer, zoo serve)",
    )
    endpoint.add_argument(
        "--endpoint-model",
        metavar="NAME",
        help="the model's name on the endpoint (default: the model's own)",
    )
    endpoint.add_argument(
        "--reference",
        metavar="MODEL",
        help="with --endpoint: a float32 .onnx export to compare with, run here on ONNX Runtime "
        "(default: Keras; MODEL itself when it is a .onnx file)",
    )
    endpoint.add_argument(
        "--timeout",
        type=number_between(0, low_inclusive=False),
        default=None,
        metavar="S",
        help="with --endpoint: seconds each call to it may take (default: 30)",
    )


def add_runtime_options(command) -> None:
    """``--backends A,B`` and ``--precisions A,B``: the file on each runtime, as ``zoo bench``
    names them (``--runtimes``, the first spelling, kept for one release)."""
    [runtimes] = option_groups(command, "runtimes")
    backends = runtimes.add_argument(
        "--backends",
        type=comma_list,
        default=None,
        metavar="A,B",
        help="verify the file on each of these backends, in one table: onnx, openvino, opencv "
        "(default: onnx)",
    )
    add_deprecated(runtimes, "--runtimes", backends)
    runtimes.add_argument(
        "--precisions",
        type=comma_list,
        default=None,
        metavar="A,B",
        help="the precisions each runtime computes in (default: the file's own): fp32, bf16 "
        "(openvino, where the CPU has it); a reduced one is measured by its agreement",
    )


def _run_runtimes(args) -> int:
    from zoo.base.printing import print_json, print_table
    from zoo.exporters.runtimes import HEADER, verify_runtimes
    from zoo.model.labels import resolve_labels
    from zoo.plugin.registry import get_registry
    from zoo.runtime.samples import image_files

    spec = get_registry().model(args.model)
    images = image_files(Path(args.images)) if args.images else []
    report = verify_runtimes(
        spec, args.onnx, args.backends or ["onnx"], args.precisions or [None], args.weights, images
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print_table(HEADER, report.rows())
    report.raise_for_failure(resolve_labels(spec.labels))
    return 0


def _run_verify(args) -> int:
    from zoo.base.printing import print_json
    from zoo.exporters.verify_file import verify_file
    from zoo.model.labels import resolve_labels
    from zoo.plugin.registry import get_registry
    from zoo.runtime.samples import image_files

    if args.endpoint or args.endpoint_model or args.reference or args.timeout is not None:
        return _run_endpoint(args)
    if args.onnx is None:
        raise ZooError("zoo verify MODEL FILE.onnx, or zoo verify MODEL --endpoint URL")
    if args.backends is not None or args.precisions is not None:
        return _run_runtimes(args)
    spec = get_registry().model(args.model)
    images = image_files(Path(args.images)) if args.images else []
    report = verify_file(spec, args.onnx, args.weights, images)
    if args.json:
        print_json(report.to_dict())
    report.raise_for_failure(resolve_labels(spec.labels))
    if not args.json:
        print(f"{args.onnx}: {report.summary()}")
    return 0


def _run_endpoint(args) -> int:
    from zoo.base.printing import print_json
    from zoo.exporters.endpoint import DEFAULT_TIMEOUT, keras_side, onnx_side, verify_endpoint
    from zoo.exporters.oip_client import OipClient
    from zoo.plugin.registry import get_registry
    from zoo.runtime.samples import image_files, sample_images, verification_images
    from zoo.sources.resolver import is_onnx_file

    if not args.endpoint:
        raise ZooError("--endpoint-model, --reference and --timeout go with --endpoint URL")
    if args.onnx is not None:
        raise ZooError(f"give {args.onnx} or --endpoint, not both (or --reference {args.onnx})")
    if args.backends is not None or args.precisions is not None:
        raise ZooError("--backends and --precisions verify a file; leave them out with --endpoint")
    onnx_reference = args.reference or is_onnx_file(args.model)
    if onnx_reference and args.weights:
        raise ZooError("--weights chooses Keras's weights; the reference here is a .onnx file")
    client = OipClient(args.endpoint, args.timeout or DEFAULT_TIMEOUT)
    extra = image_files(Path(args.images)) if args.images else []
    if is_onnx_file(args.model):
        if args.reference and Path(args.reference) != Path(args.model):
            raise ZooError(f"{args.model} is the reference: leave --reference out")
        reference = onnx_side(Path(args.model), [*sample_images(), *extra])
    else:
        spec = get_registry().model(args.model)
        photos = [*verification_images(spec), *extra]
        if args.reference:
            if not is_onnx_file(args.reference):
                raise ZooError(f"--reference {args.reference}: give a float32 .onnx export")
            reference = onnx_side(Path(args.reference), photos, spec.name)
        else:
            reference = keras_side(spec, args.weights or "imagenet", photos)
    report = verify_endpoint(client, args.endpoint_model or reference.model, reference)
    if args.json:
        print_json(report.to_dict())
    report.raise_for_failure(reference.config.labels)
    if not args.json:
        print(report.summary())
    return 0
