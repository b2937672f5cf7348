"""The README and docs/ stay true: every ``zoo`` command they show is one zoo's parser accepts
(options renamed or removed fail here, and old spellings kept for one release too), every link
to a file points at one, and the README stays short enough to finish."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from zoo.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_BLOCK = re.compile(r"```(?:sh|console|bash)\n(.*?)```", re.DOTALL)


def shown_commands(page: Path) -> list[str]:
    """The ``zoo ...`` command lines in a page's shell blocks, continuations joined and
    trailing comments dropped."""
    commands = []
    for block in SHELL_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith("zoo "):
                commands.append(re.split(r"\s+#\s", line)[0].split(" > ")[0].split(" | ")[0])
    return commands


COMMANDS = [(page.relative_to(ROOT), line) for page in PAGES for line in shown_commands(page)]


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_every_command_shown_parses(page, line):
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as exit:
        assert exit.code == 0, f"{page}: {line!r} does not parse: {stderr.getvalue().strip()}"
    assert "deprecated" not in stderr.getvalue(), f"{page}: {line!r}: {stderr.getvalue().strip()}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_to_files_point_at_files(page):
    for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_is_short_and_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 20_000
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README does not link docs/{doc.name}"
    assert "docs/measurements/README.md" in readme
    index = (ROOT / "docs" / "measurements" / "README.md").read_text()
    for page in sorted((ROOT / "docs" / "measurements").glob("*.md")):
        assert page.name == "README.md" or f"]({page.name})" in index, f"{page.name} unlisted"
