"""Small builders for access-log and pen.log lines used across the mergelogs tests."""

from __future__ import annotations

import pytest

from mergelogs.accesslog import format_stamp
from pen.penlog import format_line

BASE = 1795577386  # 2026-11-25 03:29:46 UTC


def clf(client: str, epoch: int, request: bytes, offset: int = 0, status: int = 200) -> bytes:
    """A combined-format line as Apache 2.x writes it (``request`` already escaped)."""
    return b'%s - - [%s] "%s" %d 512 "-" "agent/1.0"\n' % (
        client.encode(), format_stamp(epoch, offset), request, status)


def pen(client: str, epoch: int, server: str, request: bytes) -> bytes:
    """A pen.log line, through the one pen.log writer."""
    return format_line(client, epoch, server, request + b"\r\nHost: x\r\n\r\n")


@pytest.fixture
def write(tmp_path):
    """Write lines to a file under tmp_path and return its path as a string."""

    def writer(name: str, lines: list[bytes]) -> str:
        path = tmp_path / name
        path.write_bytes(b"".join(lines))
        return str(path)

    return writer
