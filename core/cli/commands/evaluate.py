"""``zoo evaluate``: top-1, per-class metrics and the confusion matrix of a model on labelled
images (the work is in ``zoo.training.evaluation``)."""

from __future__ import annotations

from zoo.cli.options import (
    MODEL_HELP,
    add_engine_options,
    add_input_options,
    add_json,
    add_keras_file_options,
    add_model_options,
    add_precision,
    input_overrides,
    option_groups,
    positive_int,
    print_report,
    ray_options,
)


def add_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="top-1, per-class metrics and the confusion matrix of a model on labelled images",
        description="Evaluate MODEL (a registered or trained model, or a .onnx file) on DATA: "
        "one sub-folder per class, named by the model's labels or class ids (with train/ val/ "
        "test/: its test images, else val). Predictions outside DATA's classes count as "
        "'(other)'.",
    )
    evaluate.add_argument("model", help=MODEL_HELP)
    evaluate.add_argument("data", help="folder of labelled images")
    inputs, model = option_groups(evaluate, "input", "model")
    add_input_options(inputs)
    add_model_options(model)
    add_precision(model)
    model.add_argument("--batch-size", type=positive_int, default=32, help="batch size (32)")
    model.add_argument(
        "--reference",
        metavar="MODEL",
        help="an int8 or fp16 .onnx file's float32 model to measure agreement with (a name, or "
        "a float32 .onnx file; default: the model its card names, in Keras)",
    )
    add_keras_file_options(evaluate, "model")
    [output] = option_groups(evaluate, "output")
    output.add_argument("--plot", metavar="OUT.png", help="write the confusion matrix here")
    add_json(output, "print the metrics as JSON")
    add_engine_options(evaluate, "runs the model (a .onnx file, or any model's verified export)")
    evaluate.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from zoo.training import evaluate
    from zoo.training.summary import print_evaluation

    engine = ray_options(args)
    return print_report(
        args,
        lambda: evaluate(
            args.model,
            args.data,
            backend=args.backend,
            weights=args.weights,
            batch_size=args.batch_size,
            overrides=input_overrides(args),
            provider=args.provider,
            threads=args.threads if engine is None else 0,
            precision=args.precision,
            reference=args.reference,
            engine=engine,
        ),
        print_evaluation,
    )
