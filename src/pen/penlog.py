"""The pen.log line: one definition shared by the balancer (writer) and mergelogs (reader).

A line is ``<client> <epoch> <server> <request>\\n`` (spec section 5.1). The request is what
pen saw of the client's data: at most the first 100 bytes, cut at the first CR or LF, with
every byte >= 0x80 written as ``.``; all other bytes, control bytes included, stay raw.
The UDP netlog datagram (section 5.2) is ``+ <client> <server> <request>\\n`` with the
request cut at CR/LF only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEEP_MAX = 100
"""Bytes of a client chunk that pen keeps in pen.log."""

NETLOG_MAX = 990
"""Bytes of a request that fit the 1024-byte netlog datagram beside client and server."""

_HIGH_TO_DOT = bytes(range(128)) + b"." * 128
_LINE = re.compile(rb"(.*?) (\d+) (\S+) (.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PenRecord:
    """One pen.log line: who sent which request to which backend, and when (epoch seconds)."""

    client: str
    epoch: int
    server: str
    request: bytes


def _first_line(data: bytes) -> bytes:
    """Cut ``data`` at its first CR or LF (int membership tests first: the common case)."""
    if 13 in data:
        data = data[: data.index(13)]
    if 10 in data:
        data = data[: data.index(10)]
    return data


def reduce_request(data: bytes) -> bytes:
    """Reduce a client chunk (or an unescaped %r) to the request text pen logs for it."""
    data = data[:KEEP_MAX]
    if 13 in data or 10 in data:
        data = _first_line(data)
    return data if data.isascii() else data.translate(_HIGH_TO_DOT)


def format_line(client: str, epoch: int, server: str, data: bytes) -> bytes:
    """The pen.log line for ``data`` read from ``client`` and sent to ``server``."""
    return b"%s %d %s %s\n" % (client.encode(), epoch, server.encode(), reduce_request(data))


def format_netlog(client: str, server: str, data: bytes) -> bytes:
    """The netlog datagram for ``data``: no timestamp, no byte replacement."""
    request = _first_line(data[:NETLOG_MAX])
    return b"+ %s %s %s\n" % (client.encode(), server.encode(), request)


def split_line(line: bytes) -> tuple[bytes, int, bytes, bytes] | None:
    """The fields of one pen.log line (client, epoch, server, request); None if it is not one.

    The client may be empty (a Unix-socket peer) or hold spaces
    (``(cannot convert address)``), so when the plain split fails the epoch is found as the
    first all-digit field.
    """
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) == 4 and parts[1].isdigit() and parts[2]:
        return parts[0], int(parts[1]), parts[2], parts[3]
    match = _LINE.fullmatch(line.rstrip(b"\n"))
    if match is None:
        return None
    client, epoch, server, request = match.groups()
    return client, int(epoch), server, request


def parse_line(line: bytes) -> PenRecord | None:
    """Parse one pen.log line (with or without its newline); None if it is not one."""
    fields = split_line(line)
    if fields is None:
        return None
    client, epoch, server, request = fields
    return PenRecord(client.decode("ascii", "replace"), epoch, server.decode("ascii", "replace"),
                     request)
