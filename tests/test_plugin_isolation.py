"""A plugin cannot take zoo down: whatever its import, its registration or a hook does (raise,
exit, print, hang, misspell), that plugin is dropped with one warning line naming it and
everything else works. Each plugin here is an installed distribution (a dist-info on the
path), run through the ``zoo`` command in a fresh interpreter, as a user meets it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from zoo.plugin.guard import SLOW_PLUGIN_S

from .conftest import run_zoo
from .plugin_packages import BAD, GOOD, MODEL, hook, installed

REASONS = {
    "signature": "its hooks do not match zoo's: hookimpl definition: register_models(registrar)",
    "exit_in_hook": "failed in register_models: called sys.exit(3)",
    "exit_at_import": "failed to load: called sys.exit('bye')",
    "keyboard_interrupt_in_hook": "raised KeyboardInterrupt (nobody pressed Ctrl-C)",
    "keyboard_interrupt_at_import": "raised KeyboardInterrupt (nobody pressed Ctrl-C)",
    "print_at_import": "failed to load: printed to standard output ('hello from a plugin')",
    "print_in_hook": "failed in register_models: printed to standard output ('registering!')",
    "print_in_commands": "failed in register_commands: printed to standard output",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD)
def test_a_bad_plugin_costs_only_itself(case, tmp_path):
    env = installed(tmp_path, BAD[case])
    for args in (["--version"], ["--help"], ["plugins", "--json"], ["list", "--json"]):
        result = run_zoo(*args, env=env, timeout=60)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        if "--json" in args:
            rows = json.loads(result.stdout)  # strict JSON: nothing the plugin printed
            assert "bad" not in {row["name"] for row in rows}
    models = {row["name"] for row in json.loads(result.stdout)}
    assert {"good", "mobilenet"} <= models
    warnings = [line for line in result.stderr.splitlines() if line.startswith("zoo: warning:")]
    assert len(warnings) == 1 and "'zoo_bad'" in warnings[0], result.stderr
    assert REASONS[case] in warnings[0]
    if case.startswith("print"):  # what it printed is not lost: it went to stderr
        assert any(line.startswith(("hello", "registering", "adding")) for line in
                   result.stderr.splitlines())  # fmt: skip


@pytest.mark.slow
def test_a_bad_plugin_costs_every_registration_it_made(tmp_path):
    source = hook(MODEL.format(name="first")) + hook(
        "    raise RuntimeError('later')\n", "register_backends"
    ).removeprefix("import zoo\n")
    result = run_zoo("list", "--json", env=installed(tmp_path, source), timeout=60)
    assert result.returncode == 0
    assert "first" not in {row["name"] for row in json.loads(result.stdout)}
    assert "failed in register_backends: RuntimeError: later" in result.stderr


@pytest.mark.slow
def test_the_python_api_raises_only_zoo_errors_beside_a_broken_plugin(tmp_path):
    probe = (
        "import zoo\n"
        "try:\n    zoo.load('no-such-model')\n"
        "except zoo.ZooError as error:\n    print(type(error).__name__)\n"
    )
    env = {**os.environ, **installed(tmp_path, BAD["signature"])}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "UnknownModel\n"


@pytest.mark.slow
def test_a_misspelled_hook_is_named_with_the_real_one(tmp_path):
    misspelled = hook(MODEL.format(name="never"), name="register_model")
    env = installed(tmp_path, misspelled)
    rows = {r["name"]: r for r in json.loads(run_zoo("plugins", "--json", env=env).stdout)}
    assert rows["zoo_bad"]["hooks"] == []
    assert rows["zoo_bad"]["unknown_hooks"] == [
        "'register_model' is not a zoo hook (did you mean 'register_models'?)"
    ]
    check = run_zoo("check-plugin", "zoo-bad", env=env, timeout=120)
    assert check.returncode == 1
    assert (
        "'register_model' is not a zoo hook (did you mean 'register_models'?)"
        in (check.stderr.splitlines()[-1])
    )


SLEEPER = "import time\ntime.sleep({seconds})\n" + GOOD.replace("good", "sleepy")


@pytest.mark.slow
def test_a_slow_plugin_is_named_and_zoo_goes_on(tmp_path):
    env = installed(tmp_path, SLEEPER.format(seconds=SLOW_PLUGIN_S + 1))
    result = run_zoo("--help", env=env, timeout=60)
    assert result.returncode == 0
    assert result.stderr.startswith(
        f"zoo: still loading plugin 'zoo_bad' after {SLOW_PLUGIN_S:g} s"
    )


@pytest.mark.slow
def test_ctrl_c_while_a_plugin_hangs_names_it(tmp_path):
    env = {**os.environ, **installed(tmp_path, SLEEPER.format(seconds=600))}
    zoo = subprocess.Popen(
        [sys.executable, "-m", "zoo", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    notice = zoo.stderr.readline()  # blocks until zoo says which plugin it waits for
    assert "still loading plugin 'zoo_bad'" in notice
    pressed = time.monotonic()
    zoo.send_signal(signal.SIGINT)
    _, rest = zoo.communicate(timeout=30)
    assert time.monotonic() - pressed < 5
    assert zoo.returncode == 130
    assert rest == "zoo: interrupted while loading plugin 'zoo_bad'\n"
