"""Every command's options: one meaning per name (the table in docs/commands.md), old spellings
that still work with one warning line, ``--help`` in sections, the Keras-file options only
where one model is named, and plugin commands added through zoo's public wrapper."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import zoo
from zoo.cli.main import build_parser, main
from zoo.cli.options import DeprecatedOption
from zoo.plugin.registry import PluginWarning

ROOT = Path(__file__).resolve().parent.parent
SINGLE_MODEL = {"predict", "export", "bench", "verify", "train", "evaluate"}
"""The commands that name one model, which may be a Keras file: they take the Keras-file
options (and ``import``, whose whole point is one file)."""


def commands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    parser = parser or build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def options(command: argparse.ArgumentParser) -> list[argparse.Action]:
    """The command's options, old spellings and ``--help`` left out."""
    return [
        action
        for action in command._actions
        if action.option_strings
        and action.dest != "help"
        and not isinstance(action, DeprecatedOption)
    ]


def kind(action: argparse.Action) -> tuple:
    """What an option takes: its action, the type of its value, how many, which choices."""
    value_type = getattr(action.type, "__name__", action.type)
    return (type(action).__name__, value_type, action.nargs, tuple(action.choices or ()))


def documented_options() -> dict[str, set[str]]:
    """The option table of docs/commands.md: each option name -> the commands it is on."""
    table = {}
    for line in (ROOT / "docs" / "commands.md").read_text().splitlines():
        if line.startswith("| `-"):
            names, _meaning, on = re.split(r"(?<!\\)\|", line.strip("|"))
            for name in re.findall(r"`(-[-\w]+)", names):
                table[name] = {command.strip() for command in on.split(",")}
    return table


def test_every_option_name_means_one_thing_on_every_command():
    meanings: dict[str, set] = {}
    for command in commands().values():
        for action in options(command):
            for option in action.option_strings:
                meanings.setdefault(option, set()).add((action.dest, kind(action)))
    assert len(meanings) > 50
    twice = {option: seen for option, seen in meanings.items() if len(seen) > 1}
    assert twice == {}, f"an option name with two meanings: {twice}"


def test_the_option_table_in_the_docs_lists_every_option_on_its_commands():
    on: dict[str, set[str]] = {}
    for name, command in commands().items():
        for action in options(command):
            for option in action.option_strings:
                on.setdefault(option, set()).add(name)
    documented = documented_options()
    wrong = {option: on.get(option) for option in on.keys() | documented.keys()}
    wrong = {o: commands for o, commands in wrong.items() if documented.get(o) != commands}
    assert wrong == {}, (
        "docs/commands.md's option table is out of date; these options are on these commands "
        f"(None: on none), with the meaning the table gives each name: {wrong}"
    )


def test_an_option_and_its_old_spelling_live_on_the_same_command():
    for name, command in commands().items():
        actions = command._actions
        for old in (a for a in actions if isinstance(a, DeprecatedOption)):
            assert old.new in actions, (name, old.option_strings)
            assert not set(old.option_strings) & {
                s for a in options(command) for s in a.option_strings
            }


OLD_SPELLINGS = [
    # (the command, its old spelling, the new one, the option read, its value)
    ("predict m x.jpg", "--workers 3", "--decode-threads 3", "decode_threads", 3),
    ("serve m.onnx", "--workers 2", "--concurrent-batches 2", "concurrent_batches", 2),
    ("export m", "--onnx", "--format onnx", "format", "onnx"),
    ("export m", "--quantize int8", "--precision int8", "precision", "int8"),
    ("export m", "--batch 4", "--batch-dim 4", "batch_dim", 4),
    ("bench m", "--backend onnx", "--backends onnx", "backends", ["onnx"]),
    ("bench m", "--batch 1,8", "--batch-sizes 1,8", "batch_sizes", [1, 8]),
    ("check-plugin p", "--model a", "--models a", "models", ["a"]),
]


@pytest.mark.parametrize(("command", "old", "new", "dest", "value"), OLD_SPELLINGS)
def test_an_old_spelling_still_works_and_warns_once(capsys, command, old, new, dest, value):
    args = build_parser().parse_args(f"{command} {new}".split())
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == ""
    args = build_parser().parse_args(f"{command} {old}".split())
    assert getattr(args, dest) == value
    spelling = old.split()[0]
    use = new if spelling == "--onnx" else new.split()[0]
    assert capsys.readouterr().err == f"zoo: warning: {spelling} is deprecated; use {use}\n"
    build_parser().parse_args(f"{command} {old} {old}".split())
    assert capsys.readouterr().err == f"zoo: warning: {spelling} is deprecated; use {use}\n"


def test_an_old_spelling_warns_before_the_command_runs(capsys):
    assert main(["export", "no-such-model", "--onnx"]) == 1
    warning, error = capsys.readouterr().err.splitlines()
    assert warning == "zoo: warning: --onnx is deprecated; use --format onnx"
    assert error.startswith("zoo: unknown model 'no-such-model'")


def sections(help_text: str) -> dict[str, list[str]]:
    """``--help``'s sections: title -> the option lines under it."""
    found: dict[str, list[str]] = {}
    title = None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            found[title] = []
        elif title and line.startswith("  -"):
            found[title].append(line.split()[0].rstrip(","))
    return found


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_help_is_in_sections(name):
    shown = sections(commands()[name].format_help())
    assert shown.pop("options") == ["-h"], f"zoo {name} --help: options outside a section"
    assert shown.pop("positional arguments", None) in (None, [])
    assert shown and all(lines for lines in shown.values()), shown


@pytest.mark.parametrize("name", ["train", "predict", "serve"])
def test_the_long_helps_read_in_sections(name):
    shown = sections(commands()[name].format_help())
    assert len(shown) >= 5
    assert max(len(lines) for lines in shown.values()) <= 12


def test_the_keras_file_options_are_only_where_one_model_is_named():
    with_them = {
        name
        for name, command in commands().items()
        if any("--labels" in action.option_strings for action in options(command))
    }
    assert with_them == SINGLE_MODEL | {"import"}


def test_a_multi_model_command_cannot_be_given_a_files_name(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["compare", "p.jpg", "--models", "a.keras,b.keras", "--name", "x"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --name x" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["compare", "serve"])
def test_a_multi_model_commands_help_names_zoo_import(name):
    assert "zoo import FILE --name NAME" in " ".join(commands()[name].format_help().split())


def commands_plugin(function):
    return type("Plugin", (), {"register_commands": staticmethod(zoo.hookimpl(function))})()


def test_a_plugin_command_with_options_in_sections(install_plugin, capsys):
    def register_commands(cli):
        hello = cli.add_parser("hello", help="say hello", description="Says hello.")
        group = hello.add_argument_group("output")
        group.add_argument("--who", default="world")
        hello.set_defaults(run=lambda args: print(f"hello {args.who}") or 0)

    install_plugin(commands_plugin(register_commands), "zoo-hello")
    assert main(["hello", "--who", "zoo"]) == 0
    assert capsys.readouterr().out == "hello zoo\n"
    hello = commands()["hello"]
    assert hello.prog == "zoo hello" and hello.description == "Says hello."
    assert sections(hello.format_help())["output"] == ["--who"]
    assert "say hello" in build_parser().format_help()


def test_a_plugin_that_adds_a_command_then_fails_leaves_no_trace(install_plugin, capsys):
    def register_commands(cli):
        cli.add_parser("half", help="half a plugin").set_defaults(run=lambda args: 0)
        raise RuntimeError("second command broke")

    install_plugin(commands_plugin(register_commands), "zoo-half")
    with pytest.warns(PluginWarning, match="zoo-half"):
        parser = build_parser()
    assert "half" not in commands(parser)
    assert "half" not in parser.format_help()
    assert main(["list"]) == 0
    assert capsys.readouterr().err == (
        "zoo: warning: plugin 'zoo-half' failed in register_commands: "
        "RuntimeError: second command broke\n"
    )
    with pytest.raises(SystemExit):
        main(["half"])
    assert "invalid choice: 'half'" in capsys.readouterr().err


def test_a_plugin_cannot_take_a_commands_name(install_plugin, capsys):
    def register_commands(cli):
        cli.add_parser("list", help="mine now").set_defaults(run=lambda args: 3)

    install_plugin(commands_plugin(register_commands), "zoo-thief")
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "mobilenet" in captured.out
    assert captured.err == (
        "zoo: warning: plugin 'zoo-thief' failed in register_commands: "
        "ZooError: a command named 'list' exists already\n"
    )


def test_the_cli_leaves_argparse_private_state_alone():
    for path in (ROOT / "core" / "cli").rglob("*.py"):
        source = path.read_text()
        assert "_name_parser_map" not in source and "_choices_actions" not in source, path
