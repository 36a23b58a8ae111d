"""The wheel: every console script of pyproject.toml, each with its man page."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "README.md", "MANIFEST.in", "src", "tools")


def scripts() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as text:
        return tomllib.load(text)["project"]["scripts"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the checkout (the build writes build/ and egg-info)."""
    tree = tmp_path_factory.mktemp("checkout")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(tree)],
                   check=True, capture_output=True, timeout=120)
    (built,) = out.glob("pen_suite-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _member(archive: zipfile.ZipFile, suffix: str) -> str:
    (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
    return archive.read(name).decode()


@pytest.mark.timeout(180)
def test_every_console_script_is_an_entry_point(wheel):
    entry_points = _member(wheel, ".dist-info/entry_points.txt")
    for name, target in scripts().items():
        assert f"{name} = {target}" in entry_points


@pytest.mark.timeout(180)
def test_every_console_script_has_its_man_page_from_its_help(wheel):
    for name in scripts():
        page = _member(wheel, f".data/data/share/man/man1/{name}.1")
        assert page.startswith(f'.TH "{name.upper()}" "1"')
        assert ".SH SYNOPSIS" in page and ".SH OPTIONS" in page
        assert r"\-\-version" in page, name
        help_text = subprocess.run([str(Path(sys.executable).parent / name), "--help"],
                                   capture_output=True, text=True, timeout=30).stdout
        for word in help_text.split():  # every long option --help lists is on the page
            if word.startswith("--") and word[2:3].isalpha():
                option = word.split("=")[0].rstrip(",.]")
                assert option.replace("-", r"\-") in page, (name, option)


@pytest.mark.timeout(180)
def test_the_wheel_depends_on_what_pyproject_lists(wheel):
    with open(ROOT / "pyproject.toml", "rb") as text:
        wanted = tomllib.load(text)["project"]["dependencies"]
    metadata = _member(wheel, ".dist-info/METADATA")
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ") and "extra ==" not in line]
    assert sorted(r.replace(" ", "") for r in requires) == sorted(
        w.replace(" ", "").replace("'", '"') for w in wanted)
