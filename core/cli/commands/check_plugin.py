"""``zoo check-plugin``: the conformance check a plugin author runs on their models."""

from __future__ import annotations

import sys

from zoo.base.exit_codes import EXIT_ERROR
from zoo.base.printing import print_json, print_table
from zoo.cli.options import add_deprecated, add_json, comma_list, option_groups


def add_command(commands) -> None:
    check = commands.add_parser(
        "check-plugin", help="conformance check for a plugin's models (for plugin authors)"
    )
    check.add_argument("plugin", help="the plugin's entry point or distribution name")
    inputs, model, output = option_groups(check, "input", "model", "output")
    models = inputs.add_argument(
        "--models",
        type=comma_list,
        action="extend",
        default=[],
        metavar="M,N",
        help="check only these models of the plugin (comma-separated, repeatable; default: all "
        "its models)",
    )
    add_deprecated(inputs, "--model", models)
    model.add_argument(
        "--weights", default="none", help="weights for every model (default: none, offline)"
    )
    add_json(output)
    check.set_defaults(run=run)


def run(args) -> int:
    from zoo.runtime.conformance import check_plugin

    report = check_plugin(args.plugin, weights=args.weights, models=args.models)
    if args.json:
        print_json(report.to_dict())
    else:
        print_table(
            ["MODEL", "CHECK", "RESULT", "DETAIL"],
            [[c.model, c.step, "ok" if c.ok else "FAILED", c.detail] for c in report.checks],
        )
    if not report.passed:
        failures = report.failures()
        reasons = "; ".join(f"{c.model}: {c.step}: {c.detail}" for c in failures)
        print(
            f"zoo: plugin {report.plugin!r} fails the conformance check "
            f"({reasons or 'no checks ran'})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
