"""Options shared by zoo's commands, built-in or a plugin's: declare them once, read them alike.

A command's parser is made next to its runner (``zoo.cli.commands.*``, or a plugin's
``register_commands``); these helpers add the options several commands share, with one type
check and one help text each. An option name means one thing on every command (the table in
docs/commands.md; tests/test_options.py checks it), each command's options sit in named
``--help`` sections (``option_groups``), and an old spelling is kept for one release with
``add_deprecated``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
from pathlib import Path

from zoo.base.errors import ZooError
from zoo.model.input_config import InputOverrides
from zoo.model.interpolation import INTERPOLATION_NAMES, KERAS_INTERPOLATION
from zoo.sources.keras_file import KerasFileOptions
from zoo.sources.weights import WEIGHTS_HELP


def integer_at_least(minimum: int):
    """An argparse ``type``: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = integer_at_least(1)


def number_between(low: float, high: float = math.inf, *, low_inclusive: bool = True):
    """An argparse ``type``: a number from ``low`` (included, unless ``low_inclusive`` is
    False) up to ``high`` (excluded)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        above = value >= low if low_inclusive else value > low
        if not (above and value < high) or math.isnan(value):
            lower = "at least" if low_inclusive else "more than"
            upper = "" if high == math.inf else f" and less than {high:g}"
            raise argparse.ArgumentTypeError(f"must be {lower} {low:g}{upper}, not {text}")
        return value

    parse.__name__ = "number"
    return parse


def comma_list(text: str) -> list[str]:
    """An argparse ``type``: ``a,b, c`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def option_groups(parser: argparse.ArgumentParser, *titles: str) -> list:
    """The ``--help`` sections of a command, in the order given: ``input`` (what it reads, and
    how), ``model`` (the model, and where it runs), ``output`` (what it writes), ``engine``,
    ``server``...; each takes ``add_argument`` as the parser does."""
    return [parser.add_argument_group(title) for title in titles]


class DeprecatedOption(argparse.Action):
    """An old spelling kept for one release: it does what the ``new`` option does (given
    ``value``, for a flag that stood for one value of it), after one line on stderr, once
    however often it is given. Hidden from ``--help``; docs/commands.md lists the old
    spellings."""

    def __init__(self, option_strings, dest, *, new: argparse.Action, value=None, **kwargs):
        same = ("nargs", "const", "type", "choices", "metavar") if value is None else ()
        kwargs = {"nargs": 0, **{name: getattr(new, name) for name in same}, **kwargs}
        super().__init__(
            option_strings, new.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs
        )
        self.new, self.value, self.warned = new, value, False
        self.use = " ".join([new.option_strings[-1], *([] if value is None else [value])])

    def __call__(self, parser, namespace, values, option_string=None):
        if not self.warned:
            print(f"zoo: warning: {option_string} is deprecated; use {self.use}", file=sys.stderr)
            self.warned = True
        self.new(parser, namespace, values if self.value is None else self.value, option_string)


def add_deprecated(container, old: str, new: argparse.Action, value: str | None = None, **kwargs):
    """Accept ``old`` for ``new`` (the action ``add_argument`` returned) for one release; see
    ``DeprecatedOption``. ``kwargs``: what differs from ``new`` (``choices``)."""
    container.add_argument(old, action=DeprecatedOption, new=new, value=value, **kwargs)


def add_json(parser: argparse.ArgumentParser, what: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def add_weights(parser: argparse.ArgumentParser, default: str = "imagenet") -> None:
    parser.add_argument("--weights", default=default, help=f"{WEIGHTS_HELP} (default: {default})")


def add_provider(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        metavar="NAME",
        default="auto",
        help="ONNX Runtime execution provider: auto (CUDA if usable, else CPU), cpu, cuda",
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        metavar="N",
        type=integer_at_least(0),
        default=0,
        help="CPU threads per inference (0, the default: the backend's, all cores)",
    )


def add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", default="keras", help="inference backend: keras (default), onnx, a plugin's"
    )


def add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        metavar="P",
        default=None,
        help="what the runtime computes in: fp32 (default: a file's own); bf16 or fp16 on "
        "openvino, only where the CPU has them natively; int8 on onnx (a verified int8 "
        "export); see docs/runtimes.md",
    )


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """The options that override a model's own input settings (``InputOverrides``, one option
    a field, of the same name)."""
    parser.add_argument(
        "--interpolation",
        choices=INTERPOLATION_NAMES,
        default=None,
        help="resize filter (default: the model's own: what it was trained with; for the "
        f"ImageNet models {KERAS_INTERPOLATION}, as keras.utils.load_img)",
    )


def add_top(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=positive_int, default=5, help="classes per image (5)")


def add_decode_threads(parser: argparse.ArgumentParser, default: int = 0) -> argparse.Action:
    return parser.add_argument(
        "--decode-threads",
        metavar="N",
        type=integer_at_least(0),
        default=default,
        help="threads decoding images (0, the default: one per CPU core)",
    )


def input_overrides(args: argparse.Namespace) -> InputOverrides:
    """The model-input options a command was given (see ``zoo.model.input_config.resolve``)."""
    return InputOverrides(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(InputOverrides)}
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model group of every command that classifies images: backend, weights, device
    (the resize filter, ``--top`` and ``--json`` go in its input and output groups)."""
    add_backend(parser)
    add_weights(parser)
    add_provider(parser)
    add_threads(parser)


RAY_OPTIONS = ("address", "connect_timeout", "actors", "gpus_per_actor")
"""The Ray engine's options every command with ``--engine`` has: each defaults to None, so
that ``--engine local`` can refuse them."""


def add_engine_options(parser: argparse.ArgumentParser, what: str):
    """``--engine local|ray`` and the Ray engine's options; ``what``: what the actors do, for
    the group's help. The group, for a command to add options of its own to."""
    engine = parser.add_argument_group(
        "engine",
        f"--engine ray {what} on a Ray cluster (pip install 'zoo[ray]'), ONNX Runtime in "
        "each actor; --threads is then per actor (default 1)",
    )
    engine.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default): this process; ray: a pool of Ray actors",
    )
    engine.add_argument(
        "--address",
        default=None,
        help="the Ray cluster (default: $RAY_ADDRESS, else a Ray started for this command)",
    )
    engine.add_argument(
        "--connect-timeout",
        type=number_between(0, low_inclusive=False),
        default=None,
        metavar="S",
        help="seconds the cluster at the address gets to answer before the command gives up "
        "(default 30)",
    )
    engine.add_argument(
        "--actors",
        type=positive_int,
        default=None,
        help="actors in the pool (default: as many as the cluster's CPUs or GPUs allow)",
    )
    engine.add_argument(
        "--gpus-per-actor",
        type=number_between(0),
        default=None,
        metavar="G",
        help="GPUs each actor holds (default 0: CPU actors); above 0, ONNX Runtime runs on CUDA",
    )
    return engine


def refuse_ray_options(args: argparse.Namespace, names=RAY_OPTIONS) -> None:
    """``--engine local`` with an option only the Ray engine has: say so, not ignore it."""
    given = [name for name in names if getattr(args, name, None) is not None]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ZooError(f"{options}: only with --engine ray")


def ray_options(args: argparse.Namespace):
    """The Ray engine's options a command was given, as ``zoo.distributed.RayOptions``
    (``None`` with ``--engine local``, after refusing any Ray option given with it)."""
    if args.engine != "ray":
        refuse_ray_options(args)
        return None
    from zoo.distributed import CONNECT_TIMEOUT_S, RayOptions, actors_backend

    actors_backend(getattr(args, "backend", "keras"))

    return RayOptions(
        address=args.address,
        connect_timeout=args.connect_timeout or CONNECT_TIMEOUT_S,
        actors=args.actors,
        threads=args.threads or 1,
        gpus=args.gpus_per_actor or 0,
        ray_logs=getattr(args, "debug", False),
    )


@contextlib.contextmanager
def engine_output(args: argparse.Namespace):
    """A context for a command's work and output: with ``--engine ray``, what Ray prints is
    kept off stdout (and off stderr unless ``--debug``); it yields the stdout to print to.
    Ray is left before the context ends: its messages about what happened in the cluster (an
    actor that died, a task retried) come late, and would land among the output."""
    if args.engine != "ray":
        yield sys.stdout
        return
    from zoo.base.stdio import output_kept_from_libraries

    with output_kept_from_libraries(show_theirs=getattr(args, "debug", False)) as out:
        try:
            yield out
        finally:
            ray = sys.modules.get("ray")
            if ray is not None and ray.is_initialized():
                ray.shutdown()


def print_report(args, work, print_text) -> int:
    """Run ``work()`` (it returns a report: ``TrainReport``, ``EvaluationReport``) on the
    command's engine, draw ``--plot`` from the report (an unwritable path fails before the work
    starts), and print it: ``--json``, else ``print_text(report)``, on the stdout that Ray's
    messages cannot reach."""
    from zoo.base.printing import print_json

    if args.plot:
        from zoo.runtime.plot import check_can_plot

        check_can_plot(args.plot)
    with engine_output(args) as out:
        report = work()
        if args.plot:
            from zoo.training.plot import plot_report

            plot_report(report, args.plot)
        with contextlib.redirect_stdout(out):
            if args.json:
                print_json(report.to_dict())
            else:
                print_text(report)
    return 0


MODEL_HELP = "a model: a name or alias (see 'zoo list'), a .onnx file, or a .keras/.h5 file"

FILES_AS_THEY_ARE = (
    "a .keras/.h5 file is taken as it is (its stem as its name, class_0, class_1... as "
    "labels); to give one a name, labels or preprocessing, keep it first with 'zoo import FILE "
    "--name NAME --labels ...' and give NAME"
)
"""The help of a command that takes several models: the Keras-file options are for one file,
so they are on the commands that name one (``add_keras_file_options``), never on these."""


def add_model_references(parser: argparse.ArgumentParser, *references: str) -> None:
    """``references``: the argument names of a command's models (a name, or a list of them),
    whose Keras files the CLI registers before the command runs (``resolve_model_references``),
    with the Keras-file options if the command has them, else as the files are."""
    parser.set_defaults(model_references=references)


def add_keras_file_options(parser: argparse.ArgumentParser, *references: str) -> None:
    """The options that say what a Keras model file (``.keras``, ``.h5``) does not, for a
    command that names one model (``references``: its argument name; none for ``zoo import``),
    in a ``--help`` section of their own."""
    group = parser.add_argument_group(
        "a Keras file as the model",
        "what a .keras or .h5 model file does not say (see docs/export.md)",
    )
    group.add_argument(
        "--labels",
        metavar="FILE",
        default=None,
        help="class labels, one per line, Teachable Machine's '0 name' lines, or a JSON list "
        "(default: a labels.txt beside the file with as many, else class_0, class_1...)",
    )
    group.add_argument(
        "--preprocess",
        metavar="NAME",
        default=None,
        help="a registered preprocessor: caffe, tf, torch, unit (x/255), none..., or the steps, "
        "e.g. 'scale=1/255,bgr' or 'scale=1/255,mean=0.5,std=0.25' (default: none when the "
        "graph starts with Rescaling or Normalization; otherwise required)",
    )
    group.add_argument(
        "--input-size",
        metavar="HxW",
        type=_input_size,
        default=None,
        help="input size, only for a file whose input takes any size",
    )
    group.add_argument(
        "--name", default=None, help="the model's name (default: the file's stem, lowercase)"
    )
    group.add_argument(
        "--custom-objects",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE before loading: it registers the file's custom classes (repeatable)",
    )
    group.add_argument(
        "--allow-lambda",
        action="store_true",
        help="load Lambda layers, which runs the Python code the file holds: only for a "
        "file you trust",
    )
    add_model_references(parser, *references)


def _input_size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    try:
        size = (int(height), int(width or height))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be HEIGHTxWIDTH (224x224) or N, not {text!r}"
        ) from None
    return size


def keras_file_options(args: argparse.Namespace) -> KerasFileOptions:
    return KerasFileOptions(
        labels=Path(args.labels) if args.labels else None,
        preprocess=args.preprocess,
        input_size=args.input_size,
        name=args.name,
        custom_objects=tuple(args.custom_objects),
        allow_lambda=args.allow_lambda,
    )


def resolve_model_references(args: argparse.Namespace) -> None:
    """Register the Keras files among the command's model references, once, before it runs:
    with its Keras-file options on a command that names one model, as they are on the others."""
    from zoo.sources.resolver import register_reference

    named_one = hasattr(args, "allow_lambda")  # add_keras_file_options was called
    options = keras_file_options(args) if named_one else KerasFileOptions()
    for dest in args.model_references:
        value = getattr(args, dest, None)
        for reference in value if isinstance(value, list) else [value]:
            if reference is not None:
                register_reference(reference, options)
