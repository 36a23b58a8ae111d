"""pen's -d event trace: protocol classes that narrate a connection's life, chosen once per level.

Level 0 gets the plain ClientSide, so the data path never tests a debug flag. Level 1 logs
events (accept, the server chosen and why, connect result, blacklisting, failover, refusal,
idle close, close with bytes each way); level 2 adds a line per chunk read; from level 3 on
dump.py adds the traffic itself.
"""

from __future__ import annotations

import asyncio
import logging

from .httpscan import Refusal
from .servers import ABUSE, EMERGENCY, Server
from .tcp import ClientSide, ServerSide

logger = logging.getLogger("pen.debug")


class TracingClientSide(ClientSide):
    """A client connection whose events go to the debug log (-d)."""

    __slots__ = ("peer",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Trace the accept, then choose and connect as usual."""
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        logger.debug("%s: accepted (%d open)", self.peer, len(self.proxy.conns) + 1)
        super().connection_made(transport)
        if self.server is None and self.transport.is_closing():
            logger.debug("%s: no server available, closing", self.peer)

    def _why(self, index: int) -> str:
        """Which selection rule picked ``index`` (policy.py's order)."""
        if index == ABUSE:
            return "client_acl denies the client: abuse server"
        if index == EMERGENCY:
            return "emergency server"
        if self.order is not None:
            return "failover"
        settings = self.proxy.core.settings
        if not settings.roundrobin and self.record.server == index:
            return "client tracking"
        for rule in ("prio", "weight", "hash"):
            if getattr(settings, rule):
                return rule
        return "roundrobin"

    def _connect(self, index: int, server: Server) -> None:
        logger.debug("%s: server %d (%s:%d) chosen by %s", self.peer, index, server.address,
                     server.port, self._why(index))
        super()._connect(index, server)

    def upstream_made(self, up: asyncio.Transport) -> None:
        """Trace the connect's success."""
        logger.debug("%s: connected to server %d", self.peer, self.index)
        super().upstream_made(up)

    def failed(self, server: Server, error: BaseException) -> None:
        """Trace a failed connect and the blacklisting it causes."""
        reason = "timed out" if isinstance(error, asyncio.CancelledError) else str(error)
        logger.debug("%s: connect to server %d (%s:%d) failed (%s): blacklisted for %d s",
                     self.peer, self.index, server.address, server.port, reason,
                     self.proxy.core.table.blacklist_time)

    def refused(self, refusal: Refusal) -> None:
        """Trace a request refused by the scanner or the head timeout."""
        logger.debug("%s: request refused: %s (%d)", self.peer, refusal.name, refusal.status)

    def expire(self) -> None:
        """Trace an idle close."""
        logger.debug("%s: idle for %d s, closing", self.peer, self.proxy.core.settings.idle_timeout)
        super().expire()

    def connection_lost(self, exc: Exception | None) -> None:
        """Trace the close with the bytes each way."""
        received = self.upstream.received if self.upstream is not None else 0
        logger.debug("%s: closed, server %d: %d bytes from the client, %d from the server",
                     self.peer, self.index, self.sent, received)
        super().connection_lost(exc)


class ChunkTracingServerSide(ServerSide):
    """A backend connection tracing each chunk it reads (-d -d)."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        """Trace the chunk, then pass it on."""
        client = self.client
        logger.debug("%s: %d bytes from server %d", getattr(client, "peer", "-"), len(data),
                     client.index)
        super().data_received(data)


class ChunkTracingClientSide(TracingClientSide):
    """A client connection tracing each chunk it reads as well as its events (-d -d)."""

    __slots__ = ()
    upstream_class = ChunkTracingServerSide

    def data_received(self, data: bytes) -> None:
        """Trace the chunk, then handle it as usual."""
        logger.debug("%s: %d bytes from the client", self.peer, len(data))
        super().data_received(data)


def client_class(level: int) -> type[ClientSide]:
    """The client protocol for debug ``level``; chosen when the level is set, not per call."""
    if level >= 3:
        from .dump import DumpingClientSide

        return DumpingClientSide
    return (ClientSide, TracingClientSide, ChunkTracingClientSide)[level]
