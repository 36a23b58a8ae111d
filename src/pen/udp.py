"""The UDP data path (-U): one listener endpoint, one upstream endpoint per client flow.

A flow is a client ip:port. Its first datagram chooses a server as a TCP connection would;
later datagrams of the flow go to the same upstream endpoint, and replies go back from the
listening socket, so clients see answers from the address they asked. Flows idle for
``udp_idle`` seconds are closed by a periodic sweep.

Overload policy: at most ``conn_max`` flows and ``FLOW_QUEUE`` datagrams waiting for an
upstream endpoint to open; anything beyond is dropped and counted, because UDP senders
retry and a bounded drop is better than unbounded memory.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, cast

from .policy import try_server
from .servers import Server

if TYPE_CHECKING:
    from .app import ProxyState

FLOW_QUEUE = 64
"""Datagrams kept per flow while its upstream endpoint opens."""

Address = tuple[str, int]


class Flow(asyncio.DatagramProtocol):
    """One client ip:port and its upstream endpoint."""

    __slots__ = ("listener", "client", "server", "transport", "queue", "last", "closed")

    def __init__(self, listener: UdpListener, client: Address, server: Server) -> None:
        self.listener = listener
        self.client = client
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: list[bytes] = []
        self.last = time.monotonic()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires when the upstream endpoint is open: send what waited."""
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.queue:
            self.transport.sendto(data)
        self.queue.clear()

    def send(self, data: bytes) -> None:
        """Forward one client datagram upstream (or queue it while the endpoint opens)."""
        self.last = time.monotonic()
        self.server.sx += len(data)
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.queue) < FLOW_QUEUE:
            self.queue.append(data)
        else:
            self.listener.dropped += 1

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """Fires for each reply from the backend: send it to the client from the listen address."""
        self.last = time.monotonic()
        self.server.rx += len(data)
        self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        """Fires on an ICMP error: blacklist a refusing backend and end the flow.

        pen only closed the flow, so a client kept being sent to a dead server; blacklisting
        makes the next datagram fail over, as a refused TCP connect does.
        """
        if isinstance(exc, ConnectionRefusedError):
            self.listener.proxy.core.table.fail(self.server, time.time())
        self.close()

    def close(self) -> None:
        """End the flow and release its server slot."""
        if self.closed:
            return
        self.closed = True
        self.server.conns -= 1
        self.listener.flows.pop(self.client, None)
        if self.transport is not None:
            self.transport.close()


class UdpListener(asyncio.DatagramProtocol):
    """The -U listening endpoint."""

    def __init__(self, proxy: ProxyState) -> None:
        self.proxy = proxy
        self.flows: dict[Address, Flow] = {}
        self.dropped = 0
        self.sweeper: asyncio.TimerHandle | None = None

    @classmethod
    async def start(cls, proxy: ProxyState, sock: socket.socket) -> UdpListener:
        """Serve datagrams arriving on the bound ``sock``."""
        listener = cls(proxy)
        await proxy.loop.create_datagram_endpoint(lambda: listener, sock=sock)
        listener._arm()
        return listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires once when the listening endpoint is ready."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _arm(self) -> None:
        idle = self.proxy.core.settings.udp_idle
        self.sweeper = self.proxy.loop.call_later(max(idle / 2, 0.1), self._sweep)

    def _sweep(self) -> None:
        """Close the flows idle for longer than ``udp_idle``."""
        limit = time.monotonic() - self.proxy.core.settings.udp_idle
        for flow in [f for f in self.flows.values() if f.last < limit]:
            flow.close()
        self._arm()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """Fires for each client datagram: log it and pass it to the flow's server."""
        flow = self.flows.get(addr)
        if flow is None:
            flow = self._open(addr)
            if flow is None:
                self.dropped += 1
                return
        log = self.proxy.log
        if log.active:
            log.write(addr[0], int(time.time()), flow.server.address, data)
        flow.send(data)

    def _open(self, addr: Address) -> Flow | None:
        """Choose a server for a new flow and start its upstream endpoint."""
        proxy = self.proxy
        core = proxy.core
        if len(self.flows) >= core.settings.conn_max:
            return None
        now = time.time()
        record, first, server = core.choose(addr[0], addr[1], now)
        index = first
        if server is None:
            for index in core.failover(first):
                server = try_server(core.table, index, record, core.acls, now)
                if server is not None:
                    break
            else:
                return None
        record.server = index
        server.conns += 1
        server.total += 1
        flow = self.flows[addr] = Flow(self, addr, server)
        task = proxy.loop.create_task(
            proxy.loop.create_datagram_endpoint(
                lambda: flow, remote_addr=(server.address, server.port), family=server.family
            )
        )
        task.add_done_callback(lambda t: flow.close() if t.cancelled() or t.exception() else None)
        return flow

    def close(self) -> None:
        """Stop the sweep and close every flow and the listener."""
        if self.sweeper is not None:
            self.sweeper.cancel()
        for flow in list(self.flows.values()):
            flow.close()
        self.transport.close()
