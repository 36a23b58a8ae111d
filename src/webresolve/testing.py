"""A DNS server for tests and benchmarks: answers PTR (and A/AAAA) from a map, on loopback.

It can also misbehave on purpose, per address: NXDOMAIN, SERVFAIL, REFUSED, silence,
garbage bytes, truncation, a late answer, or a hostile PTR name. It is bound to
127.0.0.1 port 0 before anything starts, and built on ``dns.message.make_response`` as
dnspython's own test nameserver is.
"""

from __future__ import annotations

import asyncio
import enum
import random
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
from dns.rdtypes.ANY.PTR import PTR


class Behaviour(enum.Enum):
    """What the server does with a question."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NOANSWER = "noanswer"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    DROP = "drop"
    GARBAGE = "garbage"
    """The right id and question, then answer records cut off: a malformed reply."""
    TRUNCATE = "truncate"
    """Over UDP, an empty reply with TC set; over TCP (when served), the answer."""


@dataclass(slots=True)
class Rule:
    """How to answer the PTR question of one address."""

    behaviour: Behaviour = Behaviour.ANSWER
    name: dns.name.Name | None = None
    delay: float = 0.0
    ttl: int = 3600


@dataclass(slots=True)
class FakeDns(asyncio.DatagramProtocol):
    """The server's state; also the datagram protocol of its socket.

    ``rules`` maps a PTR owner name to how it is answered; names not in it get NXDOMAIN.
    ``forward`` maps a host name to the addresses its A/AAAA questions return. ``log`` has
    each UDP question as it arrived: (the loop's time, question name). ``loss`` is the
    fraction of all datagrams dropped at random (seeded), beside the per-address rules.
    """

    rules: dict[dns.name.Name, Rule] = field(default_factory=dict)
    forward: dict[dns.name.Name, list[str]] = field(default_factory=dict)
    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    queries: Counter[str] = field(default_factory=Counter)
    log: list[tuple[float, str]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    tcp: asyncio.Server | None = None
    seed: int = 0
    _random: random.Random = field(default_factory=random.Random)

    def add(
        self,
        address: str,
        name: str | dns.name.Name | None = None,
        behaviour: Behaviour = Behaviour.ANSWER,
        *,
        delay: float = 0.0,
        ttl: int = 3600,
        forward: bool = True,
    ) -> None:
        """Answer the PTR of ``address`` with ``name`` (and the name's A/AAAA with it)."""
        target = dns.name.from_text(name) if isinstance(name, str) else name
        self.rules[dns.reversename.from_address(address)] = Rule(behaviour, target, delay, ttl)
        if forward and target is not None and isinstance(name, str):
            self.forward.setdefault(target, []).append(address)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires once the socket is bound."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        """Fires for each query: answer it now or after its delay, or not at all."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        question = query.question[0]
        name = question.name.to_text()
        self.queries[name] += 1
        self.log.append((asyncio.get_running_loop().time(), name))
        if self.loss and self._random.random() < self.loss:
            return
        wire, delay = self._respond(query, question, tcp=False)
        if wire is None or self.transport is None:
            return
        delay += self.delay + self._random.uniform(0, self.jitter)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._send, wire, addr)
        else:
            self.transport.sendto(wire, addr)

    def _send(self, wire: bytes, addr: tuple[str | bytes, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Fires per TCP connection: answer one length-prefixed query, then close."""
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            query = dns.message.from_wire(await reader.readexactly(size))
            question = query.question[0]
            self.queries["tcp " + question.name.to_text()] += 1
            wire, _ = self._respond(query, question, tcp=True)
            if wire is not None:
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, dns.exception.DNSException, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        """Close the UDP socket and the TCP listener."""
        if self.transport is not None:
            self.transport.close()
        if self.tcp is not None:
            self.tcp.close()

    def _respond(
        self, query: dns.message.Message, question: dns.rrset.RRset, tcp: bool
    ) -> tuple[bytes | None, float]:
        response = dns.message.make_response(query)
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return self._forward(response, question), 0.0
        rule = self.rules.get(question.name, Rule(Behaviour.NXDOMAIN))
        b = rule.behaviour
        if b is Behaviour.DROP:
            return None, 0.0
        if b is Behaviour.GARBAGE:
            header = response.to_wire()
            return header[:6] + b"\x00\x03" + header[8:] + b"\xc0\x0c\x00", rule.delay
        if b is Behaviour.TRUNCATE and not tcp:
            response.flags |= dns.flags.TC
        elif b in (Behaviour.ANSWER, Behaviour.TRUNCATE) and rule.name is not None:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.PTR)
            rrset.add(PTR(dns.rdataclass.IN, dns.rdatatype.PTR, rule.name), rule.ttl)
            response.answer.append(rrset)
        else:
            response.set_rcode(_RCODES.get(b, dns.rcode.NOERROR))
        return response.to_wire(), rule.delay

    def _forward(self, response: dns.message.Message, question: dns.rrset.RRset) -> bytes:
        family = dns.rdatatype.AAAA if question.rdtype == dns.rdatatype.AAAA else dns.rdatatype.A
        addresses = [
            a
            for a in self.forward.get(question.name, [])
            if (":" in a) == (family == dns.rdatatype.AAAA)
        ]
        if not addresses:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 3600, "IN", family, addresses)
            )
        return response.to_wire()


_RCODES = {
    Behaviour.NXDOMAIN: dns.rcode.NXDOMAIN,
    Behaviour.SERVFAIL: dns.rcode.SERVFAIL,
    Behaviour.REFUSED: dns.rcode.REFUSED,
    Behaviour.NOANSWER: dns.rcode.NOERROR,
}


async def start(server: FakeDns, host: str = "127.0.0.1", tcp: bool = False) -> int:
    """Bind ``server`` on ``host`` port 0 in the running loop; the port it got. With
    ``tcp``, also listen on TCP at the same port number (retrying until one is free)."""
    server._random.seed(server.seed)
    loop = asyncio.get_running_loop()
    while True:
        transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=(host, 0))
        port = int(transport.get_extra_info("sockname")[1])
        if not tcp:
            return port
        try:
            server.tcp = await asyncio.start_server(server.serve_tcp, host, port)
            return port
        except OSError:
            transport.close()


class ServerThread:
    """Runs a :class:`FakeDns` on its own event loop in a thread (for CLI and subprocess
    tests, whose code under test runs a loop of its own). Use as a context manager."""

    def __init__(self, server: FakeDns) -> None:
        self.server = server
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(start(self.server), self._loop).result()
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _close(self) -> None:
        """Close the socket and let its ``connection_lost`` run before the loop stops."""
        self.server.close()
        for _ in range(3):
            await asyncio.sleep(0)


def free_port(host: str = "127.0.0.1") -> int:
    """A port number free for both UDP and TCP on ``host``, from port-0 binds that are
    closed before returning: for a DNS server started as another process (dnsmasq binds
    both protocols, and fails if another program holds the TCP port).

    :raises OSError: no such port found in 50 tries.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError("no port free for both UDP and TCP")
