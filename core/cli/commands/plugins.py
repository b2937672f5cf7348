"""``zoo plugins``: the installed plugins, their hooks and what each registered."""

from __future__ import annotations

from zoo.base.printing import print_json, print_table
from zoo.cli.options import add_json, option_groups
from zoo.plugin.manager import hooks_implemented, load_plugins
from zoo.plugin.registry import get_registry


def add_command(commands) -> None:
    plugins = commands.add_parser("plugins", help="list the installed plugins and their hooks")
    [output] = option_groups(plugins, "output")
    output.add_argument("--all", action="store_true", help="include zoo's built-in plugins")
    add_json(output)
    plugins.set_defaults(run=run)


def run(args) -> int:
    registry = get_registry()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": hooks_implemented(info.name),
            "unknown_hooks": info.unknown_hooks,
            **registry.contributions(info.name),
            "error": info.error,
        }
        for info in load_plugins().values()
        if args.all or not info.builtin
    ]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no plugins installed ('zoo plugins --all' lists the built-in ones too)")
    else:
        print_table(
            ["PLUGIN", "VERSION", "HOOKS", "PROVIDES"],
            [[row["name"], row["version"], *_plugin_summary(row)] for row in rows],
        )
    return 0


def _plugin_summary(row: dict) -> list[str]:
    if row["error"]:
        return [f"FAILED: {row['error']}", ""]
    kinds = ("models", "preprocessors", "backends", "exporters")
    provides = "; ".join(f"{kind}: {', '.join(row[kind])}" for kind in kinds if row[kind])
    hooks = ", ".join([*row["hooks"], *(f"UNKNOWN: {hook}" for hook in row["unknown_hooks"])])
    return [hooks, provides]
