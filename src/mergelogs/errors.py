"""The errors mergelogs reports: one root, structured fields, mapped to exit codes in cli.py."""

from __future__ import annotations


class MergeError(Exception):
    """Root of mergelogs' own errors."""


class InputError(MergeError):
    """An input could not be opened or read."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, reason)
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"
