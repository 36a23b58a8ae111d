"""Man pages for every console script of pyproject.toml, from the text its ``--help`` prints.

A click command's page is click-man's, from the command's own help and options. A getopt
command (pen) has one help source, its module's ``USAGE`` text with the option table
``SHORT``/``LONG`` beside it: the page is laid out from that text by the same click-man
renderer. Scripts added to ``[project.scripts]`` later get their page with no change here.

Usage: ``python tools/manpages.py OUTDIR`` (``make man`` writes build/man/man1/).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import click
from click_man.man import ManPage

ROOT = Path(__file__).resolve().parent.parent
_OPTION = re.compile(r"^\s+(--?[A-Za-z][\w-]*)\s*(.*)$")


class Page(ManPage):
    """click-man's page, with text lines that roff would take for requests kept as text."""

    def replace_blank_lines(self, s: str) -> str:
        return super().replace_blank_lines(
            re.sub(r"(?m)^([.'])", r"\\&\1", s))


def project(pyproject: Path) -> dict[str, object]:
    with open(pyproject, "rb") as text:
        table: dict[str, object] = tomllib.load(text)["project"]
    return table


def load(target: str) -> tuple[ModuleType, object]:
    """The module and object of an entry point ``module:attr``."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return module, getattr(module, attr)


def click_page(name: str, command: click.Command, version: str) -> Page:
    ctx = click.Context(command, info_name=name)
    page = Page(name)
    page.version = version
    page.short_help = command.get_short_help_str(limit=80).rstrip(".")
    page.description = inspect.cleandoc(command.help or "")
    page.synopsis = " ".join(command.collect_usage_pieces(ctx))
    page.options = [record for param in command.get_params(ctx)
                    if isinstance(param, click.Option)
                    and (record := param.get_help_record(ctx)) is not None]
    return page


def takes_value(option: str, short: str, long: list[str]) -> bool:
    """Whether getopt's table gives ``option`` an argument."""
    if option.startswith("--"):
        return option[2:] + "=" in long
    at = short.find(option[1])
    return at >= 0 and short[at + 1 : at + 2] == ":"


def usage_page(name: str, module: ModuleType, version: str) -> tuple[Page, list[str]]:
    """A getopt command's page from its USAGE text; also the text's example lines."""
    usage: str = module.USAGE
    short: str = module.SHORT
    long: list[str] = module.LONG
    package = sys.modules[module.__name__.partition(".")[0]]
    page = Page(name)
    page.version = version
    first = (package.__doc__ or name).strip().splitlines()[0]
    page.short_help = first.split(": ", 1)[-1].rstrip(".")
    blocks = re.split(r"\n\s*\n", usage.strip())
    synopsis = " ".join(line.strip().rstrip("\\") for line in blocks[0].splitlines()[1:])
    page.synopsis = re.sub(rf"^{re.escape(name)}\s+", "", " ".join(synopsis.split()))
    examples: list[str] = []
    for block in blocks[1:]:
        lines = block.splitlines()
        if lines[0].strip().endswith(":"):
            examples += [line.strip() for line in lines[1:]]
            continue
        for line in lines:
            match = _OPTION.match(line)
            if match is None:  # a continuation of the option above
                switch, text = page.options[-1]
                page.options[-1] = (switch, f"{text} {line.strip()}")
                continue
            option, rest = match.groups()
            if takes_value(option, short, long):
                value, _, rest = rest.partition(" ")
                option = f"{option} {value}"
            page.options.append((option, rest.strip()))
    return page, examples


def render(name: str, target: str, version: str, everyone: list[str]) -> str:
    """The roff text of the page of console script ``name`` (entry point ``target``)."""
    module, entry = load(target)
    if isinstance(entry, click.Command):
        return render_command(name, entry, version, everyone)
    if isinstance(getattr(module, "USAGE", None), str):
        page, examples = usage_page(name, module, version)
        return _finish(str(page), examples, name, everyone)
    raise SystemExit(f"manpages: {name} ({target}) is neither a click command "
                     "nor a module with a USAGE text")


def render_command(name: str, command: click.Command, version: str, everyone: list[str]) -> str:
    """The roff text of a click command's page."""
    return _finish(str(click_page(name, command, version)), [], name, everyone)


def _finish(text: str, examples: list[str], name: str, everyone: list[str]) -> str:
    """The page with its EXAMPLE and SEE ALSO sections."""
    if examples:
        text += ".SH EXAMPLE\n" + "".join(f".PP\n{line.replace('-', chr(92) + '-')}\n"
                                          for line in examples)
    others = [f"\\fB{other}\\fP(1)" for other in everyone if other != name]
    return text + ".SH SEE ALSO\n" + ", ".join(others) + "\n"


def write_pages(out: Path, pyproject: Path = ROOT / "pyproject.toml") -> list[Path]:
    """Write ``NAME.1`` for every console script into ``out``; returns the files."""
    table = project(pyproject)
    scripts: dict[str, str] = table["scripts"]  # type: ignore[assignment]
    version = f"pen-suite {table['version']}"
    sys.path.insert(0, str(pyproject.parent / "src"))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, target in sorted(scripts.items()):
        path = out / f"{name}.1"
        path.write_text(render(name, target, version, sorted(scripts)), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    for path in write_pages(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
