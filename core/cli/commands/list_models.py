"""``zoo list``: the registered models."""

from __future__ import annotations

from zoo.base.printing import print_json, print_table
from zoo.cli.options import add_json, option_groups
from zoo.plugin.registry import get_registry


def add_command(commands) -> None:
    list_ = commands.add_parser("list", help="list the registered models")
    [output] = option_groups(list_, "output")
    add_json(output)
    list_.set_defaults(run=run)


def run(args) -> int:
    registry = get_registry()
    rows = [
        {
            "name": spec.name,
            "aliases": list(spec.aliases),
            "input_size": list(spec.input_size),
            "preprocess": registry.preprocessor(spec).name,
            "plugin": registry.owners[("model", spec.name)],
            "description": spec.description,
        }
        for spec in registry.models.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["MODEL", "ALIASES", "INPUT", "PREPROCESS", "PLUGIN"],
        [
            [
                row["name"],
                ", ".join(row["aliases"]),
                "x".join(map(str, row["input_size"])),
                row["preprocess"],
                row["plugin"],
            ]
            for row in rows
        ],
    )
    return 0
