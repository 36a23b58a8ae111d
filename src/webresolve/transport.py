"""Many DNS queries in flight over one UDP socket per nameserver, matched back by query id.

Design notes
------------
dnspython's ``Resolver.resolve_address`` opens a socket and builds a full resolution per
query: about 0.9 ms of CPU each, which caps a Python resolver near 1,100 answers per second
however many are in flight. Here each nameserver gets one connected UDP socket, and a
query is a 16-bit id drawn at random among those not in flight, a future and a
``call_later`` timer; the bytes are rendered and read by :mod:`webresolve.messages`, on
dnspython's wire layer. A reply is accepted only if it carries an id in flight *and* is a
reply to that query's question, so a stray, late or forged datagram cannot complete the
wrong query. A truncated reply is asked again over TCP (:meth:`Transport.query_tcp`).

Lifecycle of one query::

    query() --send--> pending[id] --reply, parses, same question--> future.set_result
                                  --timer fires-----------------> LookupTimeout
                                  --ICMP refused / malformed----> LookupFailed
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from typing import cast

import dns.exception

from webresolve.errors import LookupFailed, LookupTimeout
from webresolve.messages import NotTheAnswer, Question, Reply, read_reply, render

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
    question: Question
    future: asyncio.Future[Reply]
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
        self._settle(int.from_bytes(data[:2], "big"), entry, data)

    def error_received(self, exc: Exception) -> None:
        """Fires on an ICMP error (nothing listens there): fail every query in flight."""
        for qid in list(self.pending):
            self.fail(qid, LookupFailed(str(self.server), str(exc) or type(exc).__name__))

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the socket closes: nothing more can arrive."""
        for qid in list(self.pending):
            self.fail(qid, LookupFailed(str(self.server), "socket closed"))

    def _settle(self, qid: int, entry: _Pending, data: bytes) -> None:
        try:
            reply = read_reply(data, entry.question)
        except NotTheAnswer:
            self.strays += 1
            return
        except dns.exception.DNSException as exc:
            self.fail(qid, LookupFailed(str(self.server), f"malformed reply: {exc}"))
            return
        del self.pending[qid]
        entry.timer.cancel()
        if not entry.future.done():
            entry.future.set_result(reply)

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
        """Datagrams that answered nothing in flight (late, duplicate or forged)."""
        return sum(sock.strays for sock in self._sockets)

    def query(self, server: int, question: Question, timeout: float) -> asyncio.Future[Reply]:
        """Send ``question`` to server number ``server``; the future fails with
        :class:`LookupTimeout` after ``timeout`` seconds, or :class:`LookupFailed`."""
        sock = self._sockets[server]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        qid = self._free_id(sock)
        timer = loop.call_later(timeout, sock.fail, qid, LookupTimeout(str(sock.server), "timeout"))
        sock.pending[qid] = _Pending(question, future, timer)
        assert sock.transport is not None
        sock.transport.sendto(render(qid, question))
        self.sent += 1
        return future

    async def query_tcp(self, server: int, question: Question, timeout: float) -> Reply:
        """The same question over TCP, for a reply that came back truncated.

        :raises LookupTimeout: no whole reply within ``timeout``.
        :raises LookupFailed: the connection failed or the reply is malformed.
        """
        where = self.servers[server]
        self.sent += 1
        qid = self._random.randrange(_IDS)
        message = render(qid, question)
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(where.host, where.port)
                writer.write(len(message).to_bytes(2, "big") + message)
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
                if int.from_bytes(data[:2], "big") != qid:
                    raise NotTheAnswer("reply with another id")
                return read_reply(data, question)
        except TimeoutError:
            raise LookupTimeout(str(where), "timeout over TCP") from None
        except (
            OSError,
            asyncio.IncompleteReadError,
            NotTheAnswer,
            dns.exception.DNSException,
        ) as exc:
            raise LookupFailed(str(where), f"TCP: {exc}") from None
        finally:
            if writer is not None:
                writer.close()

    def _free_id(self, sock: _ServerSocket) -> int:
        if len(sock.pending) >= _IDS // 2:
            raise LookupFailed(str(sock.server), "too many queries in flight")
        while True:
            qid = self._random.randrange(_IDS)
            if qid not in sock.pending:
                return qid
