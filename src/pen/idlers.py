"""``idlers N``: keep N idle connections open to the backends (servers taken round robin);
whatever a backend sends on them is discarded.

An idler that closes or fails to connect is replaced RETRY seconds later, never at once, so a
backend that refuses costs one connect per RETRY rather than a busy loop; lowering N closes
the newest idlers first. (C pen 0.34.1 crashes on ``idlers N``.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, cast

from .connect import Connect
from .upstream import open_upstream

if TYPE_CHECKING:
    from .app import ProxyState

RETRY = 1.0
"""Seconds before a lost or failed idler is replaced."""


class IdleConnection(asyncio.Protocol):
    """One idle upstream connection."""

    __slots__ = ("idlers", "transport")

    def __init__(self, idlers: Idlers) -> None:
        self.idlers = idlers
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires when the backend accepted."""
        self.transport = cast(asyncio.Transport, transport)
        self.idlers.made(self)

    def data_received(self, data: bytes) -> None:
        """Fires for data from the backend: discarded."""

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the backend or pen closed it."""
        self.idlers.lost(self)


class Idlers:
    """The idle connections of one balancer."""

    __slots__ = ("proxy", "open", "connecting", "cursor", "retry", "stopped")

    def __init__(self, proxy: ProxyState) -> None:
        self.proxy = proxy
        self.open: dict[IdleConnection, None] = {}
        self.connecting = 0
        self.cursor = 0
        self.retry: asyncio.TimerHandle | None = None
        self.stopped = False

    def adjust(self) -> int:
        """Open or close idlers to match settings.idlers; returns how many are open now."""
        wanted = 0 if self.stopped else self.proxy.core.settings.idlers
        while len(self.open) > wanted:
            newest = next(reversed(self.open))
            self.open.pop(newest)
            if newest.transport is not None:
                newest.transport.close()
        while len(self.open) + self.connecting < wanted and self._start():
            pass
        return len(self.open)

    def _next_server(self) -> int | None:
        """The next usable server after the cursor, round robin."""
        table = self.proxy.core.table
        now = time.time()
        for step in range(len(table)):
            index = (self.cursor + step) % len(table)
            server = table.servers[index]
            if table.available(index, now) and server.family != socket.AF_UNIX:
                self.cursor = index + 1
                return index
        return None

    def _start(self) -> bool:
        index = self._next_server()
        if index is None:
            self._later()
            return False
        proxy = self.proxy
        server = proxy.core.table.servers[index]
        self.connecting += 1
        coro = open_upstream(proxy.loop, lambda: IdleConnection(self), server,
                             proxy.core.settings, "")
        Connect(coro, self._connected).start()
        return True

    def _connected(self, error: BaseException | None) -> None:
        """Fires when an idler's connect ends, either way."""
        self.connecting -= 1
        if error is not None:
            self._later()

    def made(self, conn: IdleConnection) -> None:
        """An idler connected; one too many (N was lowered meanwhile) is closed."""
        self.open[conn] = None
        self.adjust()

    def lost(self, conn: IdleConnection) -> None:
        """An idler closed: replace it later (unless adjust() closed it on purpose)."""
        if conn in self.open:
            del self.open[conn]
            self._later()

    def _later(self) -> None:
        if self.retry is None and not self.stopped:
            self.retry = self.proxy.loop.call_later(RETRY, self._retry)

    def _retry(self) -> None:
        self.retry = None
        self.adjust()

    def close(self) -> None:
        """Close every idler and stop replacing them (shutdown)."""
        self.stopped = True
        if self.retry is not None:
            self.retry.cancel()
        self.adjust()
