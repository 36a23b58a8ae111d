"""penlog's loop: each line of a web server's log, from a pipe, as one UDP datagram to penlogd.

C penlog reads with a 1024-byte fgets and sends each piece, so a longer line reaches penlogd
as two or more bogus lines. Here a line is one datagram whatever its length, up to
LINE_MAX, the most one IPv4 datagram holds. A longer line (no web server writes one: Apache
caps a request line at 8 KiB) is cut to LINE_MAX bytes, newline kept, and counted: it is
never split.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

LINE_MAX = 65507
"""Bytes of a line sent at most: the largest UDP payload over IPv4."""


@dataclass(slots=True)
class SendStats:
    """What a run of penlog did."""

    lines: int = 0
    cut: int = 0
    """Lines longer than LINE_MAX, sent cut."""
    failed: int = 0
    """Datagrams the system refused to send (no route, a full buffer)."""


def read_lines(stream: BinaryIO, limit: int = LINE_MAX) -> Iterator[tuple[bytes, bool]]:
    """Each line of ``stream`` as it arrives (at most ``limit`` bytes of it) and whether it
    was cut; memory stays within ``limit`` however long a line is."""
    while chunk := stream.readline(limit):
        if len(chunk) < limit or chunk.endswith(b"\n"):
            yield chunk, False
            continue
        rest = chunk
        while rest and not rest.endswith(b"\n"):  # skip the rest of the long line
            rest = stream.readline(limit)
        yield chunk[: limit - 1] + b"\n", True


def send_lines(
    stream: BinaryIO,
    sock: socket.socket,
    target: tuple[str, int] | tuple[str, int, int, int],
    on_problem: Callable[[str], None],
) -> SendStats:
    """Send every line of ``stream`` to ``target`` until the end of the input.

    :param on_problem: told of each cut line and of each first failure in a row (penlog's
        stderr is the web server's error log).
    """
    stats = SendStats()
    failing = False
    for line, cut in read_lines(stream):
        stats.lines += 1
        if cut:
            stats.cut += 1
            on_problem(f"line {stats.lines} longer than {LINE_MAX} bytes: sent cut")
        try:
            sock.sendto(line, target)
            failing = False
        except OSError as exc:
            stats.failed += 1
            if not failing:
                on_problem(f"cannot send line {stats.lines}: {exc.strerror or exc}")
            failing = True
    return stats
