"""The test suite's own rule: every test asserts something. A test that only runs code passes
whatever the code answers, so it is made to assert or removed."""

from __future__ import annotations

import ast

from .conftest import REPO

CHECKS = ("raises", "warns", "fail", "skip", "importorskip")
"""``pytest.raises(...)`` and the like: a test that uses one asserts through it."""


def _asserts(node: ast.AST, helpers: set[str]) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Assert):
            return True
        if isinstance(child, ast.Call):
            function = child.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            if name in CHECKS or name in helpers or name.startswith("assert"):
                return True
    return False


def assertion_free_tests(source: str) -> list[str]:
    """The test functions of ``source`` that assert nothing, directly or through a helper of
    the same module that does."""
    tree = ast.parse(source)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    helpers: set[str] = set()
    for _ in range(3):  # helpers that call helpers
        helpers |= {
            f.name for f in functions if not f.name.startswith("test") and _asserts(f, helpers)
        }
    return [f.name for f in functions if f.name.startswith("test_") and not _asserts(f, helpers)]


def test_every_test_asserts_something():
    files = [*REPO.glob("tests/test_*.py"), *REPO.glob("examples/*/tests/test_*.py")]
    found = {
        str(path.relative_to(REPO)): names
        for path in files
        if (names := assertion_free_tests(path.read_text()))
    }
    assert found == {}


def test_the_rule_sees_a_test_without_an_assertion():
    source = (
        "def helper(x):\n    assert x\n\n"
        "def test_runs_only():\n    print(1)\n\n"
        "def test_through_a_helper():\n    helper(1)\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n"
    )
    assert assertion_free_tests(source) == ["test_runs_only"]


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) that ``source`` imports, in any form."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(alias.name for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n.rpartition(".")[2].startswith("test_")]
    return found


def test_no_test_module_imports_another():
    """What tests share lives in conftest.py and the harness modules (``tests/*.py`` that are
    not ``test_*``), so each test module reads alone and runs alone."""
    found = {
        path.name: names
        for path in REPO.glob("tests/test_*.py")
        if (names := imported_test_modules(path.read_text()))
    }
    assert found == {}


def test_the_rule_sees_a_test_module_importing_another():
    source = "from .test_images import png_bomb\nimport tests.test_train\nfrom . import conftest\n"
    assert imported_test_modules(source) == ["test_images", "tests.test_train"]
