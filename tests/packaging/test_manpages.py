"""tools/manpages.py on its own: a getopt USAGE text laid out as a page; roff-safe text."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import manpages  # noqa: E402
from pen.completion import options  # noqa: E402

USAGE = """\
usage:
  tool [-a] [-b n] \\
   host ...

  -a    a flag
  -b n  a number, told
          over two lines
  --long v1|v2  a long one

example:
  tool -a host
"""


def _module() -> types.ModuleType:
    package = types.ModuleType("faketool")
    package.__doc__ = "faketool: does a thing well."
    module = types.ModuleType("faketool.cli")
    module.USAGE, module.SHORT, module.LONG = USAGE, "ab:", ["long=", "help"]
    sys.modules["faketool"] = package
    return module


def test_usage_text_becomes_synopsis_options_and_example():
    page, examples = manpages.usage_page("tool", _module(), "suite 1.0")
    assert page.short_help == "does a thing well"
    assert page.synopsis == "[-a] [-b n] host ..."
    assert page.options == [("-a", "a flag"), ("-b n", "a number, told over two lines"),
                            ("--long v1|v2", "a long one")]
    assert examples == ["tool -a host"]


def test_takes_value_follows_the_getopt_table():
    assert manpages.takes_value("-b", "ab:", [])
    assert not manpages.takes_value("-a", "ab:", [])
    assert manpages.takes_value("--long", "", ["long="])
    assert not manpages.takes_value("--help", "", ["help"])


def test_text_lines_that_look_like_roff_requests_stay_text():
    @click.command()
    def cmd() -> None:
        """Do it.

        '-' is stdin
        .hidden would vanish
        """

    text = manpages.render_command("cmd", cmd, "suite 1.0", ["cmd", "other"])
    assert "\\&'-' is stdin" in text and "\\&.hidden would vanish" in text
    assert text.rstrip().endswith("\\fBother\\fP(1)")


def test_completion_options_come_from_the_table():
    every, valued = options("ab:", ["long=", "help"])
    assert every == ["-a", "-b", "--long", "--help"]
    assert valued == ["-b", "--long"]
