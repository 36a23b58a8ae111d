"""The least a Python TCP proxy can do: uvloop Protocols, round robin, nothing else.

bench_pen.py runs it beside our pen as the ceiling of this runtime: no client table, limits,
failover, timeouts, logging or accounting, only accept, connect (with pen's Task-free
connect driver), relay and close.

With ``--half-close`` it also passes each side's EOF on and closes once both sides ended,
as pen (and C pen, and HAProxy in tcp mode) do: the same ceiling for pen's close semantics.

With ``--tls CERT.pem`` (certificate and key in one file, as pen's -E) it terminates TLS on
the listener with the context pen builds for -E (pen.app.tls_context itself, so protocol,
options, ciphers and session settings are the same): the ceiling for pen -E.

    python bench/bare_proxy.py [--half-close] [--tls CERT.pem] PORT HOST:PORT [HOST:PORT ...]
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import sys

import uvloop

from pen.app import tls_context
from pen.config import TlsSettings
from pen.connect import Connect


class Upstream(asyncio.Protocol):
    """The backend side: relays to the client, closes it at the end."""

    def __init__(self, client: Downstream) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client.attach(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class HalfCloseUpstream(Upstream):
    """An upstream whose EOF is passed on as the client's write EOF."""

    def eof_received(self) -> bool:
        return self.client.upstream_eof()


class Downstream(asyncio.Protocol):
    """The client side: connects upstream on accept, holds what arrives before that."""

    targets: itertools.cycle[tuple[str, int]]
    upstream: type[Upstream] = Upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.up: asyncio.Transport | None = None
        self.held: list[bytes] = []
        self.eof_up = self.eof_down = False
        host, port = next(self.targets)
        loop = asyncio.get_running_loop()
        Connect(loop.create_connection(lambda: self.upstream(self), host, port),
                self.failed).start()

    def failed(self, error: BaseException) -> None:
        self.transport.close()

    def attach(self, up: asyncio.Transport) -> None:
        self.up = up
        for data in self.held:
            up.write(data)

    def data_received(self, data: bytes) -> None:
        if self.up is None:
            self.held.append(data)
        else:
            self.up.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None:
            self.up.close()

    def upstream_eof(self) -> bool:
        """The backend's EOF: shut the client's write side, or close once both ended."""
        self.eof_up = True
        if self.eof_down:
            self.transport.close()
        else:
            self.transport.write_eof()
        return True

    def eof_received(self) -> bool | None:
        """The client's EOF (pen's semantics only with --half-close)."""
        if self.upstream is Upstream:
            return None
        self.eof_down = True
        if self.up is None or self.eof_up:
            self.transport.close()
        else:
            self.up.write_eof()
        return True


async def serve(port: int, targets: list[tuple[str, int]], tls: ssl.SSLContext | None) -> None:
    Downstream.targets = itertools.cycle(targets)
    server = await asyncio.get_running_loop().create_server(Downstream, "0.0.0.0", port,
                                                            backlog=4096, ssl=tls)
    await server.serve_forever()


def main() -> None:
    args = sys.argv[1:]
    tls = None
    while args[0].startswith("--"):
        if args[0] == "--half-close":
            Downstream.upstream = HalfCloseUpstream
            args = args[1:]
        elif args[0] == "--tls":
            tls = tls_context(TlsSettings(cert=args[1]))
            args = args[2:]
        else:
            sys.exit(f"bare_proxy.py: unknown option {args[0]}")
    port = int(args[0])
    targets = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in args[1:])]
    uvloop.run(serve(port, targets, tls))


if __name__ == "__main__":
    main()
