"""zoo's own commands, added through ``register_commands`` exactly as a plugin's command is.

Each command is a module of ``zoo.cli.commands`` holding its options and the code that reads them;
this plugin only puts them on the ``zoo`` parser, in the order ``zoo --help`` lists them.
"""

from __future__ import annotations

from zoo import hookimpl
from zoo.cli.commands import COMMANDS


@hookimpl
def register_commands(cli):
    for command in COMMANDS:
        command.add_command(cli)
