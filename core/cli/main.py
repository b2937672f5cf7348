"""The ``zoo`` command. Errors a user can cause end as one ``zoo: ...`` line and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence

from zoo.base.errors import DiskFull, ZooError, describe_exception
from zoo.base.exit_codes import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED
from zoo.base.files import is_disk_full
from zoo.base.interrupts import Terminated, raise_terminated
from zoo.base.version import __version__
from zoo.cli.options import resolve_model_references
from zoo.cli.plugin_commands import PluginCommands
from zoo.plugin.guard import PluginFailed, PluginInterrupted, call_plugin
from zoo.plugin.manager import load_plugins, pm
from zoo.plugin.registry import PluginWarning

STUCK_THREADS_GRACE_S = 1.0
"""After an interrupt, how long threads still running (a decoder blocked on a file) get to
finish before the process ends without them."""


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # plugin problems as one "zoo: warning:" line
        try:
            parser = build_parser()
        except PluginInterrupted as interrupt:
            print(f"zoo: {_interrupted(interrupt)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 0
        args.debug = args.debug or bool(os.environ.get("ZOO_DEBUG"))  # commands read it too
        return _run(args, debug=args.debug)


def _run(args, debug: bool) -> int:
    """The command, with a user's errors as one line and SIGTERM unwinding like Ctrl-C (so
    that half-written files are removed on the way out)."""
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        if getattr(args, "model_references", None):
            resolve_model_references(args)
        return args.run(args) or 0
    except ZooError as error:
        if debug:
            raise
        print(f"zoo: {error}", file=sys.stderr)
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"zoo: {_interrupted(interrupt)}", file=sys.stderr)
        code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        _exit_if_threads_are_stuck(code)
        return code
    except BrokenPipeError:
        # The reader went away (zoo evaluate ... | head): stop quietly, as Unix tools do, with
        # stdout pointed at /dev/null so that the interpreter's last flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as error:
        if debug:
            raise
        if is_disk_full(error):  # a write outside zoo's own helpers (a library's temp files)
            where = getattr(error, "filename", None) or "a temporary file"
            print(f"zoo: {DiskFull(where)}", file=sys.stderr)
            return EXIT_ERROR
        print(
            f"zoo: unexpected error: {describe_exception(error)} "
            "(run with --debug or ZOO_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_ERROR


def _interrupted(interrupt: KeyboardInterrupt) -> str:
    if isinstance(interrupt, Terminated):
        return "terminated"
    if isinstance(interrupt, PluginInterrupted):
        return f"interrupted while loading plugin {interrupt.plugin!r}"
    return "interrupted"


def _exit_if_threads_are_stuck(code: int) -> None:
    """End the process now if a thread still runs once the interrupt has unwound (and its
    cleanup run): Python would wait for it forever on the way out."""
    deadline = time.monotonic() + STUCK_THREADS_GRACE_S
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.current_thread()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_default_showwarning = warnings.showwarning


def _show_warning(message, category, *args, **kwargs):
    if issubclass(category, PluginWarning):
        print(f"zoo: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Keras ImageNet classifiers on Keras or ONNX Runtime, extensible with plugins.",
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    load_plugins()
    taken: set[str] = set()
    for impl in pm.hook.register_commands.get_hookimpls():
        _add_plugin_commands(commands, impl, taken)
    return parser


def _add_plugin_commands(commands, impl, taken: set[str]) -> None:
    """One plugin's ``register_commands``: its commands reach ``zoo`` only if the hook returns
    (see ``PluginCommands``); if it fails, the plugin is named in one warning line."""
    cli = PluginCommands(taken)
    try:
        call_plugin(impl.plugin_name, "register_commands", lambda: impl.function(cli))
    except PluginFailed as failure:
        warnings.warn(
            f"plugin {impl.plugin_name!r} failed in register_commands: {failure}",
            PluginWarning,
            stacklevel=1,
        )
    else:
        cli.commit(commands)
