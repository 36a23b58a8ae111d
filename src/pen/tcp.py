"""The TCP data path: a client-side and a server-side asyncio Protocol per proxied connection.

Life of a pair (after asyncio/protocols.py):

    ClientSide.connection_made -- server chosen, connect started, client bytes held
                                  (reading paused once HOLD_MAX bytes are held)
      -> connect (a Connect, not a Task) fails, or times out (ProxyState's sweep
         cancels it): blacklist, next candidate (failover) ... or close
      -> ServerSide.connection_made: PROXY header, then the held bytes
    data_received on one side -> peer.write(data)                 (no task, no copy)
    -l/-H: client bytes pass the RequestScanner first; when it ends in
      SWITCH   -> client reading paused, a SwitchWatcher stands in for the ServerSide
                  until the backend's status line says tunnel or HTTP again
      REFUSED  -> 400/431 to the client, both sides closed, the refusal counted
    pause_writing on one side  -> peer transport pause_reading     (paired flow control)
    eof_received on one side   -> peer write_eof(), keep the other direction open
                                  (tcp_fastclose for that side: close both instead)
    both directions at EOF, an error, or either side lost -> both transports closed

The server's connection counter counts from the start of the connect to the close, once.
TCP_NODELAY needs no call here: asyncio and uvloop set it on every TCP transport.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from .clients import ClientRecord
from .connect import Connect
from .httpscan import REFUSED, SWITCH, TUNNEL, Refusal, RequestScanner, StatusWatch
from .policy import try_server
from .proxyproto import proxy_header
from .servers import NO_SERVER, Server
from .upstream import open_upstream

if TYPE_CHECKING:
    from .app import ProxyState

NO_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
"""errno values of a process or system out of file descriptors."""

HOLD_MAX = 65536
"""Bytes of a client kept while its upstream connect runs; beyond it reading pauses.

Reading on while connecting (instead of pausing, as pen does) saves two epoll changes per
connection and has the first request ready to send the moment the backend accepts.
"""


class ServerSide(asyncio.Protocol):
    """The upstream connection to the chosen backend."""

    __slots__ = ("client", "transport", "received")

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.received = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires when the backend accepted the connect."""
        up: asyncio.Transport = transport  # type: ignore[assignment]  # (cast is a call)
        self.transport = up
        self.client.upstream_made(up)

    def data_received(self, data: bytes) -> None:
        """Fires for each chunk from the backend: pass it to the client."""
        self.received += len(data)
        self.client.transport.write(data)

    def eof_received(self) -> bool:
        """Fires when the backend half-closes."""
        self.client.upstream_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the upstream socket is closed."""
        self.client.upstream_lost()

    def pause_writing(self) -> None:
        """Fires when the backend's write buffer is above the high-water mark."""
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        """Fires when the backend's write buffer drained."""
        self.client.resume_client_reading()


class SwitchWatcher(asyncio.Protocol):
    """Stands in for a ServerSide (``set_protocol``) while a CONNECT or Upgrade awaits its answer.

    Only such connections pay for reading the backend's status line; the plain ServerSide
    is put back as soon as the status is known.
    """

    __slots__ = ("side", "watch")

    def __init__(self, side: ServerSide) -> None:
        self.side = side
        self.watch = StatusWatch()

    def data_received(self, data: bytes) -> None:
        """Fires for each chunk from the backend: pass it on, then look for the status."""
        side = self.side
        side.data_received(data)
        status = self.watch.feed(data)
        if status is not None and side.transport is not None:
            side.transport.set_protocol(side)
            side.client.switch_answered(status)

    def eof_received(self) -> bool:
        """Fires when the backend half-closes before answering."""
        return self.side.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the upstream socket is closed before the answer."""
        self.side.connection_lost(exc)

    def pause_writing(self) -> None:
        """Fires when the backend's write buffer is above the high-water mark."""
        self.side.pause_writing()

    def resume_writing(self) -> None:
        """Fires when the backend's write buffer drained."""
        self.side.resume_writing()


class ClientSide(asyncio.Protocol):
    """The accepted client connection; owns the pair's lifecycle."""

    __slots__ = (
        "proxy", "transport", "address", "record", "order", "index", "server", "up",
        "upstream", "pending", "scanner", "eof_down", "eof_up", "closed", "connecting",
        "released", "sent", "held",
    )
    upstream_class: ClassVar[type[ServerSide]] = ServerSide
    transport: asyncio.Transport

    def __init__(self, proxy: ProxyState) -> None:
        self.proxy = proxy
        self.up: asyncio.Transport | None = None
        self.upstream: ServerSide | None = None
        self.server: Server | None = None
        self.order: Iterator[int] | None = None
        self.pending: list[bytes] = []
        self.held = 0
        self.scanner: RequestScanner | None = None
        self.eof_down = self.eof_up = self.closed = self.released = False
        self.connecting: Connect | None = None
        self.sent = 0
        self.index = NO_SERVER

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires for each accepted client: choose a server and start the connect."""
        self.transport = transport  # type: ignore[assignment]  # (cast is a call)
        if self.proxy.opened(self):
            self.begin()

    def begin(self) -> None:
        """Choose a server and start the connect (at once, or once descriptors are back)."""
        proxy = self.proxy
        peer = self.transport.get_extra_info("peername")
        address, port = (peer[0], peer[1]) if isinstance(peer, tuple) else ("", 0)
        self.address = address
        now = time.time()
        core = proxy.core
        self.record, index, server = core.choose(address, port, now)
        self.index = index
        if server is None:
            self._connect_next(now)
        else:
            self._connect(index, server)

    def _connect_next(self, now: float) -> None:
        """Connect to the next server in failover order after ``self.index``, or close."""
        core = self.proxy.core
        if self.order is None:
            self.order = core.failover(self.index)
        for index in self.order:
            server = try_server(core.table, index, self.record, core.acls, now)
            if server is not None:
                self._connect(index, server)
                return
        self.transport.close()

    def _connect(self, index: int, server: Server) -> None:
        """Start the upstream connect to ``server``; it counts against its limits from now."""
        proxy = self.proxy
        record: ClientRecord = self.record
        record.server = index
        server.conns += 1
        server.total += 1
        self.index, self.server = index, server
        self.upstream = self.upstream_class(self)
        loop = proxy.loop
        if server.family == socket.AF_UNIX:
            coro = loop.create_unix_connection(self._factory, server.address)
        else:
            coro = open_upstream(loop, self._factory, server, proxy.core.settings, self.address)
        proxy.connect_started(self)
        self.connecting = connect = Connect(coro, self._connect_done)
        connect.start()

    def _factory(self) -> ServerSide:
        assert self.upstream is not None
        return self.upstream

    def upstream_made(self, up: asyncio.Transport) -> None:
        """The backend accepted: start the pair (or drop it if the connect was abandoned)."""
        if up.get_protocol() is not self.upstream:
            # cancelled (client gone, timeout) after the backend accepted, with
            # connection_made already queued: the slot was given back by _connect_done
            up.close()
            return
        self.proxy.connect_ended(self)
        self.connecting = None
        server = self.server
        assert server is not None
        self.up = up
        self.proxy.core.table.succeed(server)
        self._start(up)

    def _connect_done(self, error: BaseException) -> None:
        """Fires when the connect failed or timed out."""
        if self.up is not None:
            return
        self.proxy.connect_ended(self)
        self.connecting = None
        server = self.server
        if server is None:
            return
        server.conns -= 1
        self.server = None
        if self.closed:
            return
        if isinstance(error, OSError) and error.errno in NO_DESCRIPTORS:
            # Our shortage, not the backend's fault: no blacklisting, no failover; try again
            # once the burst that took the descriptors has been let go.
            self.proxy.out_of_descriptors(error)
            self.proxy.retry_later(self, self.index, server)
            return
        now = time.time()
        self.proxy.core.table.fail(server, now)
        self.failed(server, error)
        self._connect_next(now)

    def retry(self, index: int, server: Server) -> None:
        """Connect again after a shortage of descriptors (unless the client left)."""
        if not self.closed:
            self._connect(index, server)

    def failed(self, server: Server, error: BaseException) -> None:
        """Hook for the -d trace: the connect to ``server`` failed and it is blacklisted."""

    def _start(self, up: asyncio.Transport) -> None:
        """The pair is complete: send what is owed upstream and let the client talk."""
        proxy = self.proxy
        if proxy.proxy_protocol:
            up.write(proxy_header(proxy.proxy_protocol, self.transport))
        if proxy.log.active or proxy.core.settings.http:
            self.scanner = RequestScanner(self.address, proxy.scheme, proxy.http)
        for data in self.pending:
            ClientSide.data_received(self, data)  # read (and traced, dumped) already
        self.pending.clear()
        if self.eof_down:
            self._forward_eof(up)
        elif self.held > HOLD_MAX:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """Fires for each chunk from the client: log it if asked, pass it upstream."""
        up = self.up
        if up is None:
            self.pending.append(data)
            self.held += len(data)
            if self.held > HOLD_MAX:
                self.transport.pause_reading()
            return
        self.sent += len(data)
        scanner = self.scanner
        if scanner is None:
            up.write(data)
            return
        self._scanned(scanner, up, *scanner.feed(data))

    def _scanned(self, scanner: RequestScanner, up: asyncio.Transport, data: bytes,
                 heads: list[bytes]) -> None:
        """Log the heads the scanner found, forward what it let through, act on its state."""
        if heads:
            self._log(heads)
        if data:
            up.write(data)
        if scanner.state >= SWITCH:
            self._scanner_turned(scanner, up)

    def _scanner_turned(self, scanner: RequestScanner, up: asyncio.Transport) -> None:
        """The scanner left plain HTTP: follow no more, await a switch's answer, or refuse."""
        state = scanner.state
        if state == TUNNEL:
            self.scanner = None
        elif state == SWITCH:
            self.transport.pause_reading()
            if self.upstream is not None:
                up.set_protocol(SwitchWatcher(self.upstream))
        elif state == REFUSED and scanner.refusal is not None:
            self.refuse(scanner.refusal)

    def switch_answered(self, status: int) -> None:
        """The backend answered the CONNECT/Upgrade: pass on what the client sent meanwhile."""
        scanner, up = self.scanner, self.up
        if scanner is None or scanner.state != SWITCH or up is None or self.closed:
            return
        self._scanned(scanner, up, *scanner.decide(status))
        if scanner.state != REFUSED:
            self.resume_client_reading()

    def refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` and close both sides; nothing more reaches the backend.

        The scanner stays, refusing: chunks still held from the connect are dropped by it.
        """
        if self.transport.is_closing():
            return  # refused (or closed) already
        self.proxy.count(refusal.name)
        self.refused(refusal)
        if self.scanner is not None and self.scanner.state != REFUSED:
            self.scanner.stop(refusal)
        self.transport.write(refusal.response())
        self.transport.close()
        if self.up is not None:
            self.up.close()

    def refused(self, refusal: Refusal) -> None:
        """Hook for the -d trace."""

    def expire(self) -> None:
        """Close the pair at once (``idle_timeout``): nothing buffered is waited for."""
        self.transport.abort()
        if self.up is not None:
            self.up.abort()

    def _log(self, heads: list[bytes]) -> None:
        epoch = int(time.time())
        log = self.proxy.log
        address = self.server.address if self.server is not None else ""
        for head in heads:
            log.write(self.address, epoch, address, head)

    def eof_received(self) -> bool:
        """Fires when the client half-closes: pass the EOF on, keep the reply direction open.

        A TLS transport cannot stay half open (asyncio warns on every True from it).
        """
        self.eof_down = True
        if self.up is not None:
            self._forward_eof(self.up)
        return self.transport.can_write_eof()

    def _forward_eof(self, up: asyncio.Transport) -> None:
        if self.eof_up or not up.can_write_eof() or self.proxy.fastclose_down:
            up.close()
            self.transport.close()
        else:
            up.write_eof()

    def upstream_eof(self) -> None:
        """The backend half-closed: pass it to the client, close when both sides are done."""
        self.eof_up = True
        transport = self.transport
        if self.eof_down or not transport.can_write_eof() or self.proxy.fastclose_up:
            transport.close()
            if self.up is not None:
                self.up.close()
        else:
            transport.write_eof()

    def upstream_lost(self) -> None:
        """The upstream socket closed: close the client after its pending writes."""
        self.transport.close()

    def pause_writing(self) -> None:
        """Fires when the client's write buffer is above the high-water mark."""
        if self.up is not None:
            self.up.pause_reading()

    def resume_writing(self) -> None:
        """Fires when the client's write buffer drained."""
        if self.up is not None:
            self.up.resume_reading()

    def resume_client_reading(self) -> None:
        """Resume reading the client unless it already sent its EOF."""
        if not self.eof_down and self.up is not None:
            self.transport.resume_reading()

    def _count(self, server: Server) -> None:
        """Add the pair's byte counts to the server and client totals (once, at the end)."""
        received = self.upstream.received if self.upstream is not None else 0
        server.sx += self.sent
        server.rx += received
        self.record.rx += self.sent
        self.record.sx += received

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the client socket is closed: close upstream and release the slot."""
        self.closed = True
        if self.up is not None:
            self.up.close()
        if self.connecting is not None:
            self.connecting.cancel()
        server = self.server
        if server is not None and self.up is not None and not self.released:
            self.released = True
            server.conns -= 1
            self._count(server)
        # Drop the references that form cycles (client -> upstream -> client), so the
        # pair is freed by reference counting instead of waiting for the cyclic GC.
        self.up = self.upstream = self.connecting = None
        self.proxy.closed(self)
