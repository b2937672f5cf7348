"""``--custom-objects`` modules run inside the plugin guard: whatever one does at import (raise,
``sys.exit``, print, take its time) is one line naming it, and zoo's stdout stays its own."""

from __future__ import annotations

import sys
import textwrap

import pytest

from zoo.plugin import guard
from zoo.plugin.guard import UserModuleFailed, import_user_module

MODULES = {
    "raises": "raise RuntimeError('no GPU here')",
    "exits": "import sys\nsys.exit(3)",
    "exits_with_a_message": "raise SystemExit('goodbye')",
    "interrupts_itself": "raise KeyboardInterrupt",
    "prints": "print('registering Gain')\nREGISTERED = True",
    "slow": "import time\ntime.sleep(0.3)\nREGISTERED = True",
}


pytestmark = pytest.mark.tensorflow  # every test here builds Keras models


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """The modules above, importable under a name unique to the test."""
    prefix = f"custom_{tmp_path.name.replace('-', '_')}_"
    for name, source in MODULES.items():
        (tmp_path / f"{prefix}{name}.py").write_text(textwrap.dedent(source) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield lambda name: prefix + name
    for name in MODULES:
        sys.modules.pop(prefix + name, None)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("raises", "RuntimeError: no GPU here"),
        ("exits", "called sys.exit(3)"),
        ("exits_with_a_message", "called sys.exit('goodbye')"),
        ("interrupts_itself", "raised KeyboardInterrupt (nobody pressed Ctrl-C)"),
        ("missing", "ModuleNotFoundError: No module named '{module}'"),
    ],
)
def test_a_module_that_fails_is_one_line_naming_it(modules, name, reason):
    module = modules(name)
    with pytest.raises(UserModuleFailed) as failed:
        import_user_module(module, "--custom-objects")
    expected = reason.format(module=module)
    assert str(failed.value) == f"--custom-objects {module}: cannot import it ({expected})"


def test_what_a_module_prints_goes_to_stderr_with_a_warning_naming_it(modules, capsys):
    module = modules("prints")
    import_user_module(module, "--custom-objects")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "registering Gain",
        f"zoo: warning: --custom-objects {module} printed to standard output ('registering "
        "Gain') when imported; sent to stderr instead, as zoo's stdout carries its results",
    ]
    assert sys.modules[module].REGISTERED  # and it is imported all the same


def test_a_slow_module_is_named_while_zoo_waits(modules, capsys, monkeypatch):
    monkeypatch.setattr(guard, "SLOW_PLUGIN_S", 0.05)
    module = modules("slow")
    import_user_module(module, "--custom-objects")
    assert capsys.readouterr().err == (
        f"zoo: still importing --custom-objects {module} after 0.05 s (Ctrl-C stops zoo)\n"
    )
