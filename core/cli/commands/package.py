"""``zoo package``: a trained model as an installable zoo plugin distribution (the work is in
``zoo.training.package``)."""

from __future__ import annotations

from zoo.cli.options import add_json, option_groups


def add_command(commands) -> None:
    package = commands.add_parser(
        "package",
        help="turn a trained or imported model into an installable zoo plugin distribution",
        description="Write a pip-installable plugin distribution for the trained or imported "
        "model NAME: "
        "pyproject.toml with the zoo entry point, a module registering the model, its weights "
        "and a README with its base model, classes and metrics.",
    )
    package.add_argument("name", help="a trained or imported model (see 'zoo list')")
    [output] = option_groups(package, "output")
    output.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder to write (must not exist, or be empty)",
    )
    add_json(output, "print what was written as JSON")
    package.set_defaults(run=_run_package)


def _run_package(args) -> int:
    from zoo.base.printing import print_json
    from zoo.training.package import write_package

    written = write_package(args.name, args.output)
    if args.json:
        print_json(written)
    else:
        print(f"wrote {written['distribution']} to {written['path']}")
        print(f"install it with: pip install {written['path']}")
    return 0
