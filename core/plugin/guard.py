"""Running a plugin's code so that nothing it does takes zoo down.

Every piece of a third party's code that zoo runs while it starts (importing the plugin,
registering it with pluggy, each of its hooks) goes through ``call_plugin``:

* any exception, ``SystemExit`` and a ``KeyboardInterrupt`` nobody pressed included, becomes a
  ``PluginFailed`` naming the plugin and the reason; the caller drops that plugin and warns;
* what it prints goes to stderr, and printing at all fails it: zoo's stdout carries results
  (``--json``) that one stray line would break;
* a plugin still running after ``SLOW_PLUGIN_S`` is named on stderr, and a real Ctrl-C then
  ends zoo with ``PluginInterrupted`` naming it.
"""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from zoo.base.errors import describe_exception

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


def call_plugin(plugin: str, doing: str, function: Callable[[], T]) -> T:
    """``function()``, run as the plugin ``plugin``'s code; ``doing`` says what it was doing
    (``"loading"``, ``"register_models"``), for the slow-plugin notice."""
    printed = io.StringIO()
    with _ctrl_c_watch() as pressed, _slow_notice(plugin, doing):
        try:
            with contextlib.redirect_stdout(printed):
                result = function()
        except KeyboardInterrupt:
            if pressed.is_set():
                raise PluginInterrupted(plugin) from None
            raise PluginFailed("raised KeyboardInterrupt (nobody pressed Ctrl-C)") from None
        except SystemExit as stop:
            raise PluginFailed(f"called sys.exit({stop.code!r})") from None
        except BaseException as error:
            raise PluginFailed(describe_exception(error)) from error
        finally:
            _forward_to_stderr(printed.getvalue())
    if printed.getvalue().strip():
        first = printed.getvalue().strip().splitlines()[0]
        raise PluginFailed(
            f"printed to standard output ({first[:60]!r}), which carries zoo's results; "
            "a plugin must write to stderr or use logging"
        )
    return result


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
def _slow_notice(plugin: str, doing: str) -> Iterator[None]:
    def notice() -> None:
        what = "loading" if doing == "loading" else f"running {doing} of"
        print(
            f"zoo: still {what} plugin {plugin!r} after {SLOW_PLUGIN_S:g} s "
            f"(Ctrl-C stops zoo; ZOO_DISABLE_PLUGINS={plugin} skips the plugin)",
            file=sys.stderr,
            flush=True,
        )

    timer = threading.Timer(SLOW_PLUGIN_S, notice)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
