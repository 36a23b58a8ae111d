"""docs/: a page per console script, naming every option its --help lists."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
with open(ROOT / "pyproject.toml", "rb") as _text:
    SCRIPTS = sorted(tomllib.load(_text)["project"]["scripts"])
PAGES = {"splitwr": "webresolve", "penlogd": "penlog"}
"""Commands documented on another command's page."""
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def help_options(name: str) -> set[str]:
    """The options a command's --help names at the start of its option lines."""
    text = subprocess.run([str(Path(sys.executable).parent / name), "--help"],
                          capture_output=True, text=True, timeout=30).stdout
    found = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            head = re.split(r"\s{2,}", stripped)[0]
            found.update(m for m in _OPTION.findall(head))
    return found


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_command_has_a_page_with_every_option(name):
    page = ROOT / "docs" / f"{PAGES.get(name, name)}.md"
    assert page.exists(), f"no docs page for {name}"
    text = page.read_text()
    missing = sorted(o for o in help_options(name) if f"`{o}" not in text)
    assert not missing, f"{page.name} lacks {missing}"


def test_index_links_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, page.name
