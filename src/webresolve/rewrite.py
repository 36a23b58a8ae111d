"""Rewriting one log line: the chosen field replaced by a host name, every other byte kept."""

from __future__ import annotations

from mergelogs.accesslog import field_span


def locate(line: bytes, field: int) -> tuple[int, int] | None:
    """Where field ``field`` (1-based, space-separated) of ``line`` is; None if it has none."""
    span = field_span(line, field)
    if span is None or span[0] == span[1]:
        return None
    return span


def rewrite(line: bytes, span: tuple[int, int], name: bytes | None) -> bytes:
    """``line`` with the bytes at ``span`` replaced by ``name``; the line itself when None."""
    if name is None:
        return line
    return line[: span[0]] + name + line[span[1] :]
