"""Many DNS queries in flight over one UDP socket per nameserver, matched back by query id.

Design notes
------------
dnspython's ``Resolver.resolve_address`` opens a socket and builds a resolution per query:
about 0.9 ms of CPU each, which caps a Python resolver near 1,100 answers per second no
matter how many are in flight. Here each nameserver gets one connected UDP socket; a query
is a 16-bit id drawn at random among those not in flight, a future and a ``call_later``
timer. dnspython still builds and parses every message, and an answer is accepted only if
it parses and ``is_response`` to the query sent with that id (same question), so a stray
or late datagram cannot complete the wrong query. Truncated answers are retried over TCP
by the caller.

Lifecycle of one query::

    query() --send--> pending[id] --datagram, parses, matches--> future.set_result
                                  --timer fires---------------> LookupTimeout
                                  --ICMP refused / garbage----> LookupFailed
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from webresolve.errors import LookupFailed, LookupTimeout

_IDS = 1 << 16


@dataclass(frozen=True, slots=True)
class Nameserver:
    """Where to send queries."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(slots=True)
class _Pending:
    query: dns.message.Message
    future: asyncio.Future[dns.message.Message]
    timer: asyncio.TimerHandle


class _ServerSocket(asyncio.DatagramProtocol):
    """One connected UDP socket to one nameserver and the queries waiting on it."""

    def __init__(self, server: Nameserver) -> None:
        self.server = server
        self.pending: dict[int, _Pending] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.strays = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires once the socket is connected to the nameserver."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        """Fires for every datagram from the nameserver: complete the query it answers."""
        entry = self.pending.get(int.from_bytes(data[:2], "big")) if len(data) >= 12 else None
        if entry is None:
            self.strays += 1
            return
        self._settle(entry, data)

    def error_received(self, exc: Exception) -> None:
        """Fires on an ICMP error (nothing listens there): fail every query in flight."""
        for qid in list(self.pending):
            self.fail(qid, LookupFailed(str(self.server), str(exc) or type(exc).__name__))

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the socket closes: nothing more can arrive."""
        for qid in list(self.pending):
            self.fail(qid, LookupFailed(str(self.server), "socket closed"))

    def _settle(self, entry: _Pending, data: bytes) -> None:
        qid = entry.query.id
        try:
            response = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError, IndexError, UnicodeError):
            self.fail(qid, LookupFailed(str(self.server), "malformed answer"))
            return
        if not entry.query.is_response(response):
            self.strays += 1
            return
        del self.pending[qid]
        entry.timer.cancel()
        if not entry.future.done():
            entry.future.set_result(response)

    def fail(self, qid: int, exc: LookupFailed) -> None:
        """Give up on query ``qid`` with ``exc`` (timeout, refusal, garbage)."""
        entry = self.pending.pop(qid, None)
        if entry is None:
            return
        entry.timer.cancel()
        if not entry.future.done():
            entry.future.set_exception(exc)


class Transport:
    """Sends queries to a list of nameservers; one socket each, opened by :meth:`open`."""

    def __init__(self, servers: list[Nameserver]) -> None:
        self.servers = servers
        self.sent = 0
        self._sockets: list[_ServerSocket] = []
        self._random = random.SystemRandom()

    async def open(self) -> None:
        """Open one connected UDP socket per nameserver.

        :raises OSError: a nameserver address cannot be used (bad family, no route).
        """
        loop = asyncio.get_running_loop()
        for server in self.servers:
            _, protocol = await loop.create_datagram_endpoint(
                functools.partial(_ServerSocket, server), remote_addr=(server.host, server.port)
            )
            self._sockets.append(protocol)

    def close(self) -> None:
        """Close every socket; queries still in flight fail."""
        for sock in self._sockets:
            if sock.transport is not None:
                sock.transport.close()

    @property
    def strays(self) -> int:
        """Datagrams that answered nothing in flight (late, duplicate or spoofed)."""
        return sum(sock.strays for sock in self._sockets)

    def query(
        self, server: int, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, timeout: float
    ) -> asyncio.Future[dns.message.Message]:
        """Send one query to server number ``server``; the future fails with
        :class:`LookupTimeout` after ``timeout`` seconds or :class:`LookupFailed`."""
        sock = self._sockets[server]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dns.message.Message] = loop.create_future()
        qid = self._free_id(sock)
        query = dns.message.make_query(qname, rdtype, id=qid)
        timer = loop.call_later(timeout, sock.fail, qid, LookupTimeout(str(sock.server), "timeout"))
        sock.pending[qid] = _Pending(query, future, timer)
        assert sock.transport is not None
        sock.transport.sendto(query.to_wire())
        self.sent += 1
        return future

    def _free_id(self, sock: _ServerSocket) -> int:
        if len(sock.pending) >= _IDS // 2:
            raise LookupFailed(str(sock.server), "too many queries in flight")
        while True:
            qid = self._random.randrange(_IDS)
            if qid not in sock.pending:
                return qid
