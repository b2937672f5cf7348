"""``zoo import``: keep a Keras file in zoo's home as a model of its own (the work is in
``zoo.sources.imported``)."""

from __future__ import annotations

from zoo.cli.options import add_json, add_keras_file_options, keras_file_options, option_groups


def add_command(commands) -> None:
    command = commands.add_parser(
        "import",
        help="keep a .keras/.h5 model file in zoo's home, as a model of its own",
        description="Check FILE as every command does, then keep a copy in zoo's home with "
        "what the options say about it: 'zoo list' shows it, every command takes its name, "
        "'zoo package NAME' makes it a plugin.",
    )
    command.add_argument("file", help="the .keras or full-model .h5 file")
    add_keras_file_options(command)
    [output] = option_groups(command, "output")
    add_json(output, "print what was written as JSON")
    command.set_defaults(run=_run_import)


def _run_import(args) -> int:
    from zoo.base.printing import print_json
    from zoo.sources.imported import import_file

    written = import_file(args.file, keras_file_options(args))
    if args.json:
        print_json(written)
    else:
        print(f"kept {args.file} as model {written['model']} in {written['path']}")
    return 0
