"""zoo's modules import each other in one direction: layers, and no circles.

The import graph is read from the sources: every import statement, those inside functions and
under ``TYPE_CHECKING`` included (an import that runs late is still a dependency on what it
names). ``core/`` is in layers, each a subpackage that may import only itself and the layers
below it; the plugins (``zoo.plugins``) are hook implementations, written as a third party's
are, and no layer imports them by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "zoo": ROOT / "core",
    "zoo.plugins": ROOT / "plugins",
    "zoo.exporters": ROOT / "exporters",
}
LAYERS = [
    {"zoo.base"},
    {"zoo.model"},
    {"zoo.plugin"},
    {"zoo.sources"},
    {"zoo.runtime"},
    {"zoo.exporters"},
    {"zoo.distributed"},
    {"zoo.training", "zoo.serve"},
    {"zoo.cli"},
]
"""Bottom first. Packages in one layer do not import each other."""
OUTSIDE_LAYERS = {"zoo", "zoo.__main__", "zoo.plugins"}
"""The public face (re-exports, ``python -m zoo``) and the plugins (``zoo.plugins`` and its
modules): they may import any layer."""


def module_files(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module's dotted name -> its file (a package's is its ``__init__.py``)."""
    modules = {}
    for package, folder in packages.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the zoo modules it imports, anywhere in its file."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def owner(module: str, layers: list[set[str]]) -> tuple[int, str] | None:
    """(layer number, package) of ``module``, or None outside the layers."""
    for number, packages in enumerate(layers):
        for package in packages:
            if module == package or module.startswith(f"{package}."):
                return number, package
    return None


def layer_violations(
    graph: dict[str, set[str]], layers: list[set[str]], outside: set[str]
) -> list[str]:
    """Each import that reaches up (or across, within a layer), as ``a -> b``."""
    found = []
    for module, targets in sorted(graph.items()):
        if module in outside or module.rpartition(".")[0] in outside - {"zoo"}:
            continue
        here = owner(module, layers)
        assert here is not None, f"{module} is in no layer: add it to LAYERS"
        for target in sorted(targets):
            there = owner(target, layers)
            if there is None or there[0] > here[0] or (there[0] == here[0] and there != here):
                found.append(f"{module} -> {target}")
    return found


def test_zoo_has_no_import_circles():
    graph = import_graph(module_files(PACKAGES))
    assert len(graph) > 40  # the walk found zoo's modules
    assert circles(graph) == []


@pytest.mark.slow
def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph(module_files(PACKAGES))
    assert layer_violations(graph, LAYERS, OUTSIDE_LAYERS) == []


@pytest.fixture
def package(tmp_path):
    """A package ``pkg`` in two layers, ``pkg.low`` under ``pkg.high``."""
    for folder in ("", "low", "high"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "high" / "b.py").write_text("from pkg.low.a import A\n")
    return tmp_path


LAYERED = [{"pkg.low"}, {"pkg.high"}]


def test_an_import_downwards_is_allowed(package):
    (package / "low" / "a.py").write_text("A = 1\n")
    graph = import_graph(module_files({"pkg": package}))
    assert graph["pkg.high.b"] == {"pkg.low.a"}
    assert layer_violations(graph, LAYERED, {"pkg"}) == []


@pytest.mark.parametrize(
    "source",
    [
        "from pkg.high import b\n",  # at import time
        "def late():\n    from ..high.b import B\n",  # inside a function, relative
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high.b\n",
    ],
)
def test_a_lower_layer_importing_a_higher_one_is_found(package, source):
    (package / "low" / "a.py").write_text(source)
    graph = import_graph(module_files({"pkg": package}))
    assert layer_violations(graph, LAYERED, {"pkg"}) == ["pkg.low.a -> pkg.high.b"]
    assert circles(graph) == [["pkg.high.b", "pkg.low.a"]]


def test_a_circle_is_found(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from .b import B\nA = 1\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nfrom . import c\nB = 2\n")
    (tmp_path / "c.py").write_text("from pkg.a import A\n")
    (tmp_path / "d.py").write_text("def late():\n    from .a import A\n")
    graph = import_graph(module_files({"pkg": tmp_path}))
    assert graph["pkg.d"] == {"pkg.a"}
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_documented_module_paths_of_zoo_0_1_still_import_and_say_where_they_went():
    import importlib
    import sys

    import zoo

    for old, new in zoo._MOVED.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__spec__.name == new  # the module itself is left as it was
