"""The build backend: setuptools', with the man pages written before a wheel is built.

pyproject.toml ships ``build/man/man1/*.1`` as data files (``share/man/man1`` in the
environment, where ``man`` finds them next to ``bin/``). The pages are made from the commands
themselves (:mod:`manpages`), so a wheel build also needs what the commands import: the
project's own dependencies, read from pyproject.toml, plus click-man.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the rest of the PEP 517 interface)
    build_editable,
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

CLICK_MAN = "click-man>=0.4"
MAN_DIR = Path("build/man/man1")


def get_requires_for_build_wheel(config_settings: dict[str, object] | None = None) -> list[str]:
    with open("pyproject.toml", "rb") as text:
        dependencies: list[str] = tomllib.load(text)["project"]["dependencies"]
    return [*build_meta.get_requires_for_build_wheel(config_settings), *dependencies, CLICK_MAN]


def build_wheel(wheel_directory: str, config_settings: dict[str, object] | None = None,
                metadata_directory: str | None = None) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import manpages  # here: it needs the requirements above, installed only by now

    manpages.write_pages(MAN_DIR.resolve(), Path("pyproject.toml").resolve())
    return build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)
