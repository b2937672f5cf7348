"""What ``register_commands(cli)`` gets: a small public wrapper, not argparse's sub-parsers.

A plugin's hook may fail half-way (after adding one command, before the next). The commands it
adds are therefore built on parsers of their own, and put on the ``zoo`` parser only once its
hook has returned: a plugin that fails leaves no command behind, and zoo never edits argparse's
private state to take one back.
"""

from __future__ import annotations

import argparse

from zoo.base.errors import ZooError

ENTRY_KEYWORDS = ("help", "aliases")
"""``add_parser`` keywords that describe the command's entry in ``zoo --help``, not its
parser."""


class PluginCommands:
    """The commands one plugin adds: ``add_parser(name, **kwargs)`` as argparse's
    ``add_subparsers().add_parser`` (``help``, ``aliases``, ``description``, ``epilog``,
    ``formatter_class``...), returning the ``argparse.ArgumentParser`` to declare the command's
    options on, with ``set_defaults(run=function)``. Nothing reaches ``zoo`` before
    ``commit``."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = taken
        self._pending: list[tuple[list[str], dict, argparse.ArgumentParser]] = []

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        names = [name, *kwargs.get("aliases", ())]
        for each in names:
            if each in self._taken or any(each in pending for pending, _, _ in self._pending):
                raise ZooError(f"a command named {each!r} exists already")
        parser_kwargs = {k: v for k, v in kwargs.items() if k not in ENTRY_KEYWORDS}
        parser_kwargs.update(add_help=False, prog=kwargs.get("prog", f"zoo {name}"))
        parser = argparse.ArgumentParser(**parser_kwargs)
        self._pending.append((names, kwargs, parser))
        return parser

    def commit(self, subparsers) -> None:
        """Put the commands on the ``zoo`` parser's ``subparsers`` (each copies its standalone
        parser's options, groups and defaults, through argparse's public ``parents``)."""
        for names, kwargs, parser in self._pending:
            kwargs = {k: v for k, v in kwargs.items() if k != "parents"}
            subparsers.add_parser(names[0], parents=[parser], **kwargs)
            self._taken.update(names)
