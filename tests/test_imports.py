"""zoo's modules import each other in one direction: no circles.

The import graph is read from the sources (module-level imports only: an import inside a
function, or under ``TYPE_CHECKING``, runs later or never, and cannot form a circle at import
time). A circle is reported with the modules that make it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "zoo": ROOT / "core",
    "zoo.plugins": ROOT / "plugins",
    "zoo.exporters": ROOT / "exporters",
}


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


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported."""
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _module_level_imports(ast.Module(body=node.body + node.orelse))
        elif isinstance(node, ast.Try):
            yield from _module_level_imports(ast.Module(body=node.body))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the zoo modules it imports at import time."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
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


def test_zoo_has_no_import_circles():
    graph = import_graph(module_files(PACKAGES))
    assert len(graph) > 40  # the walk found zoo's modules
    assert circles(graph) == []


def test_a_circle_is_found(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from .b import B\nA = 1\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nfrom . import c\nB = 2\n")
    (tmp_path / "c.py").write_text("from pkg.a import A\n")
    (tmp_path / "d.py").write_text("def late():\n    from .a import A\n")
    graph = import_graph(module_files({"pkg": tmp_path}))
    assert graph["pkg.d"] == set()
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
