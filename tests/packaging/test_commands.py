"""Every console script: ``--version``, and shell completion through ``_PROG_COMPLETE``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
with open(ROOT / "pyproject.toml", "rb") as _text:
    SCRIPTS = sorted(tomllib.load(_text)["project"]["scripts"])
with open(ROOT / "pyproject.toml", "rb") as _text:
    VERSION = tomllib.load(_text)["project"]["version"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_version(name):
    done = subprocess.run([str(BIN / name), "--version"], capture_output=True, text=True,
                          timeout=30)
    assert (done.returncode, done.stdout) == (0, f"{name}, version {VERSION}\n")


def _complete(name: str, words: list[str]) -> list[str]:
    """What bash offers after ``words`` (the last one being typed), with the script that
    ``_NAME_COMPLETE=bash_source name`` prints sourced."""
    var = f"_{name.upper().replace('-', '_')}_COMPLETE"
    script = subprocess.run([str(BIN / name)], env={**os.environ, var: "bash_source"},
                            capture_output=True, text=True, timeout=30, check=True).stdout
    function = re.search(r"complete .*-F (\S+)", script).group(1)
    line = " ".join([name, *words])
    probe = (f'{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; COMP_LINE="{line}"; '
             f'COMP_POINT={len(line)}; {function} {name} "{words[-1]}" "{([name, *words])[-2]}"; '
             'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("name", SCRIPTS)
def test_bash_completion_offers_the_options(name):
    assert "--version" in _complete(name, ["--vers"])


def test_pen_completion_knows_values():
    assert _complete("pen", ["--loop", "uv"]) == ["uvloop"]
    assert "-h" in _complete("pen", ["-"])
    assert _complete("mergelogs", ["--ut"]) == ["--utc"]
