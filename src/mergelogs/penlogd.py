"""penlogd's I/O around a LiveMerger: the UDP endpoint, one timer, the output (reopened on
HUP) and the signals. All matching is in :mod:`mergelogs.live`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import cast

from mergelogs.live import LiveMerger

log = logging.getLogger("penlogd")

RECEIVE_BUFFER = 4 * 1024 * 1024
"""Bytes of datagrams the kernel may queue for penlogd: a burst waits there, not lost."""
STATS_EVERY = 60.0
"""Seconds between the figures logged with -d."""


def open_socket(port: int, host: str = "") -> socket.socket:
    """Bind the UDP socket on ``host`` (every address, IPv4 and IPv6, when empty).

    :raises OSError: the address cannot be bound.
    """
    if host:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
    else:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            host = "::"
        except OSError:  # no IPv6 on this host: IPv4 only, as C penlogd
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            host = "0.0.0.0"
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class Output:
    """Where merged lines go: a file opened for appending (``-l``) or stdout, each batch
    written whole at once, so a reader or a rotation never sees half a line."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lost = 0
        """Lines the system refused to take (a full disk): counted, reported."""
        self._fd = 1
        self._failing = False
        self.reopen()

    def reopen(self) -> None:
        """Open the file anew (after rotation); stdout stays as it is.

        :raises OSError: the file cannot be opened (the old one is still written then).
        """
        if self.path is None:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self._fd != 1:
            os.close(self._fd)
        self._fd = fd

    def write(self, lines: list[bytes]) -> None:
        """Write ``lines``; a failure is counted and logged once a streak, never raised."""
        if not lines:
            return
        data = memoryview(b"".join(lines))
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            self._failing = False
        except OSError as exc:
            self.lost += len(lines)
            if not self._failing:
                log.error("cannot write %s: %s", self.path or "stdout", exc.strerror or exc)
            self._failing = True

    def close(self) -> None:
        """Close the file (stdout is left open)."""
        if self._fd != 1:
            os.close(self._fd)
            self._fd = 1


class Receiver(asyncio.DatagramProtocol):
    """Feeds each datagram to the merger and writes what comes out; a timer releases the
    lines whose wait is over when no datagram comes."""

    def __init__(self, merger: LiveMerger, output: Output, loop: asyncio.AbstractEventLoop) -> None:
        self.merger = merger
        self.output = output
        self.loop = loop
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires once the endpoint is ready."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Fires for each datagram, from pen (``+ ...``) or from a penlog."""
        self.output.write(self.merger.receive(data, str(addr[0]), time.time()))
        self._arm()

    def _arm(self) -> None:
        due = self.merger.next_due()
        if self.timer is None and due is not None:
            self.timer = self.loop.call_later(max(due - time.time(), 0.0), self._tick)

    def _tick(self) -> None:
        """Fires when the oldest waiting line is due."""
        self.timer = None
        self.output.write(self.merger.due(time.time()))
        self._arm()

    def close(self) -> None:
        """Stop receiving and write every line still waiting."""
        if self.timer is not None:
            self.timer.cancel()
        self.transport.close()
        self.output.write(self.merger.flush())


async def serve(sock: socket.socket, merger: LiveMerger, output: Output,
                on_ready: Callable[[], None] | None = None) -> None:
    """Receive on ``sock`` until TERM or INT; HUP reopens the output.

    :param on_ready: called once the signals are handled (the pid file is written then, so
        a TERM sent as soon as it exists is not fatal).
    """
    loop = asyncio.get_running_loop()
    _, receiver = await loop.create_datagram_endpoint(
        lambda: Receiver(merger, output, loop), sock=sock)
    stop = asyncio.Event()

    def hangup() -> None:
        try:
            output.reopen()
            log.debug("reopened %s", output.path or "stdout")
        except OSError as exc:
            log.error("cannot reopen %s: %s; still writing the old file", output.path,
                      exc.strerror or exc)

    def figures() -> None:
        _log_figures(merger, output)
        loop.call_later(STATS_EVERY, figures)

    if log.isEnabledFor(logging.DEBUG):
        loop.call_later(STATS_EVERY, figures)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        receiver.close()
        _log_figures(merger, output)


def _log_figures(merger: LiveMerger, output: Output) -> None:
    """What penlogd has done so far, at debug level."""
    stats = merger.stats
    log.debug("%d lines (%d matched, %d unmatched), %d pen entries (%d unusable, "
              "%d forgotten early), %d lines not written", stats.lines, stats.matched,
              stats.unmatched, stats.entries, stats.unusable, stats.forgotten, output.lost)
