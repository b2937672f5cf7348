"""Running a plugin's code so that nothing it does takes zoo down.

Every piece of a third party's code that zoo runs while it starts (importing the plugin,
registering it with pluggy, each of its hooks) goes through ``call_plugin``:

* any exception, ``SystemExit`` and a ``KeyboardInterrupt`` nobody pressed included, becomes a
  ``PluginFailed`` naming the plugin and the reason; the caller drops that plugin and warns;
* what it prints goes to stderr, and printing at all fails it: zoo's stdout carries results
  (``--json``) that one stray line would break;
* a plugin still running after ``SLOW_PLUGIN_S`` is named on stderr, and a real Ctrl-C then
  ends zoo with ``PluginInterrupted`` naming it.

A module the user names for zoo to import (``--custom-objects``) goes through
``import_user_module``, the same guard: its failure is one line naming it, and what it prints
goes to stderr with a warning rather than into ``--json``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from zoo.base.errors import ZooError, describe_exception
from zoo.base.interrupts import Terminated

T = TypeVar("T")

SLOW_PLUGIN_S = 3.0
"""How long a plugin may take to load or to run a hook before zoo says which one it waits for."""


class PluginFailed(Exception):
    """A plugin's code failed; the message is one line naming what it did."""


class PluginInterrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C while a plugin's code ran."""

    def __init__(self, plugin: str):
        super().__init__(plugin)
        self.plugin = plugin


class UserModuleFailed(ZooError):
    """A module the user named on the command line (``--custom-objects``) failed to import."""


def call_plugin(plugin: str, doing: str, function: Callable[[], T]) -> T:
    """``function()``, run as the plugin ``plugin``'s code; ``doing`` says what it was doing
    (``"loading"``, ``"register_models"``), for the slow-plugin notice."""
    what = "loading" if doing == "loading" else f"running {doing} of"
    notice = (
        f"zoo: still {what} plugin {plugin!r} after {SLOW_PLUGIN_S:g} s "
        f"(Ctrl-C stops zoo; ZOO_DISABLE_PLUGINS={plugin} skips the plugin)"
    )
    result, printed = _guarded(plugin, notice, function)
    if printed:
        raise PluginFailed(
            f"printed to standard output ({printed[:60]!r}), which carries zoo's results; "
            "a plugin must write to stderr or use logging"
        )
    return result


def import_user_module(module: str, option: str) -> None:
    """Import ``module``, named by the user with ``option`` (``--custom-objects``), guarded as
    a plugin's code is: an exception or ``SystemExit`` is a ``UserModuleFailed`` naming it;
    what it prints goes to stderr (zoo's stdout carries results, ``--json``), with a warning
    naming it; still importing after ``SLOW_PLUGIN_S``, it is named on stderr (Ctrl-C stops
    zoo)."""
    _import_guarded(f"{option} {module}", lambda: importlib.import_module(module))


def import_user_file(module: str, path: Path, what: str) -> None:
    """Import ``module`` from the file ``path`` (not from ``sys.path``), guarded as
    ``import_user_module`` is; ``what`` names it in messages."""

    def load() -> None:
        spec = importlib.util.spec_from_file_location(module, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[module]
            raise

    _import_guarded(f"{what} {module} ({path})", load)


def _import_guarded(named: str, load: Callable[[], object]) -> None:
    notice = f"zoo: still importing {named} after {SLOW_PLUGIN_S:g} s (Ctrl-C stops zoo)"
    try:
        _, printed = _guarded(named, notice, load)
    except PluginInterrupted:
        raise KeyboardInterrupt from None
    except PluginFailed as failure:
        raise UserModuleFailed(f"{named}: cannot import it ({failure})") from None
    if printed:
        print(
            f"zoo: warning: {named} printed to standard output ({printed[:60]!r}) when "
            "imported; sent to stderr instead, as zoo's stdout carries its results",
            file=sys.stderr,
        )


def _guarded(name: str, notice: str, function: Callable[[], T]) -> tuple[T, str]:
    """``function()``'s result and the first line it printed ("" if none; all it printed
    goes to stderr); any failure a ``PluginFailed``, a real Ctrl-C ``PluginInterrupted``
    naming ``name``, SIGTERM itself; ``notice`` said on stderr if it runs past
    ``SLOW_PLUGIN_S``."""
    printed = io.StringIO()
    with _ctrl_c_watch() as pressed, _slow_notice(notice):
        try:
            with contextlib.redirect_stdout(printed):
                result = function()
        except Terminated:
            raise
        except KeyboardInterrupt:
            if pressed.is_set():
                raise PluginInterrupted(name) from None
            raise PluginFailed("raised KeyboardInterrupt (nobody pressed Ctrl-C)") from None
        except SystemExit as stop:
            raise PluginFailed(f"called sys.exit({stop.code!r})") from None
        except BaseException as error:
            raise PluginFailed(describe_exception(error)) from error
        finally:
            _forward_to_stderr(printed.getvalue())
    lines = printed.getvalue().strip().splitlines()
    return result, lines[0] if lines else ""


def _forward_to_stderr(text: str) -> None:
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


@contextlib.contextmanager
def _ctrl_c_watch() -> Iterator[threading.Event]:
    """An event set when SIGINT really arrives, so that a plugin raising KeyboardInterrupt
    itself is told apart from a user pressing Ctrl-C (only the main thread gets signals)."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return

    def on_sigint(signum, frame):
        pressed.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _slow_notice(text: str) -> Iterator[None]:
    def notice() -> None:
        print(text, file=sys.stderr, flush=True)

    timer = threading.Timer(SLOW_PLUGIN_S, notice)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
