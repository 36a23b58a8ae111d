"""Many DNS queries in flight over one UDP socket per nameserver, matched back by query id.

Design notes
------------
dnspython's ``Resolver.resolve_address`` opens a socket and builds a full resolution per
query: about 0.9 ms of CPU each, which caps a Python resolver near 1,100 answers per second
however many are in flight. Here each nameserver gets one connected UDP socket, and a
query is a 16-bit id drawn at random among those not in flight, a future and a
``call_later`` timer. Messages are dnspython's: the query is rendered with ``to_wire`` and
a reply read with ``dns.message.from_wire`` (its bounds, pointer-loop and count checks),
which is most of the remaining CPU per query. A reply is accepted only if it carries an id
in flight *and* ``Message.is_response`` to that query (same id, a response, same opcode and
question), so a stray, late or forged datagram cannot complete the wrong query. A truncated
reply is asked again over TCP (:meth:`Transport.query_tcp`).

Lifecycle of one query::

    query() --send--> pending[id] --reply, parses, is_response--> future.set_result
                                  --timer fires-----------------> LookupTimeout
                                  --ICMP refused / malformed----> LookupFailed
"""

from __future__ import annotations

import asyncio
import functools
import random
import struct
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype

from webresolve.errors import LookupFailed, LookupTimeout, WebresolveError

_IDS = 1 << 16
# A rendered one-question query without EDNS is the id, these 10 bytes, then the question.
_HEADER = dns.message.make_query(dns.name.root, dns.rdatatype.PTR).to_wire()[2:12]
_TYPE_CLASS = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Nameserver:
    """Where to send queries."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class NotTheAnswer(WebresolveError):
    """A well-formed reply to some other query (late, duplicate or forged)."""


def read_reply(data: bytes, query: dns.message.Message) -> dns.message.Message:
    """The reply in ``data`` to ``query``, parsed and checked by dnspython.

    :raises NotTheAnswer: a well-formed message that is not a response to ``query``.
    :raises dns.exception.DNSException: anything malformed.
    """
    reply = dns.message.from_wire(data)
    if not query.is_response(reply):
        raise NotTheAnswer("reply to another query")
    return reply


def render(query: dns.message.Message) -> bytes:
    """``query.to_wire()`` for the queries :func:`dns.message.make_query` builds here (one
    question, no EDNS, no TSIG), at a twentieth of the CPU: the message is dnspython's
    template with only the id and the question changed, and the question name is rendered
    by dnspython without the compression table a single name cannot use.

    :raises ValueError: any other kind of message (use ``to_wire`` for those).
    """
    if query.flags != dns.flags.RD or query.edns >= 0 or query.tsig is not None:
        raise ValueError("render() takes only plain one-question queries")
    (asked,) = query.question
    name = asked.name.to_wire()
    assert name is not None  # only None when given a file to write to
    return (
        query.id.to_bytes(2, "big") + _HEADER + name + _TYPE_CLASS.pack(asked.rdtype, asked.rdclass)
    )


def truncated(reply: dns.message.Message) -> bool:
    """True when the server cut the reply short (TC), so it must be asked over TCP."""
    return bool(reply.flags & dns.flags.TC)


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
            reply = read_reply(data, entry.query)
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

    def query(
        self, server: int, query: dns.message.Message, timeout: float
    ) -> asyncio.Future[dns.message.Message]:
        """Send ``query`` to server number ``server`` under a fresh id (set on ``query``,
        which must not be in flight elsewhere); the future fails with
        :class:`LookupTimeout` after ``timeout`` seconds, or :class:`LookupFailed`."""
        sock = self._sockets[server]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dns.message.Message] = loop.create_future()
        query.id = self._free_id(sock)
        timer = loop.call_later(
            timeout, sock.fail, query.id, LookupTimeout(str(sock.server), "timeout")
        )
        sock.pending[query.id] = _Pending(query, future, timer)
        assert sock.transport is not None
        sock.transport.sendto(render(query))
        self.sent += 1
        return future

    async def query_tcp(
        self, server: int, query: dns.message.Message, timeout: float
    ) -> dns.message.Message:
        """The same question over TCP, for a reply that came back truncated.

        :raises LookupTimeout: no whole reply within ``timeout``.
        :raises LookupFailed: the connection failed or the reply is malformed.
        """
        where = self.servers[server]
        self.sent += 1
        query.id = self._random.randrange(_IDS)
        message = render(query)
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(where.host, where.port)
                writer.write(len(message).to_bytes(2, "big") + message)
                size = int.from_bytes(await reader.readexactly(2), "big")
                return read_reply(await reader.readexactly(size), query)
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
