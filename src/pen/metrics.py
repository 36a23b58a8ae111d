"""--metrics: the balancer's counters in the Prometheus text format, and the HTTP responder
that serves them.

Design notes
------------
:func:`render` is pure: it reads the counters the data path already keeps (each a plain int
increment where it happens: ``Server.total``/``failures``, ``ServerTable.selections``,
``PenLog.written``/``dropped``) and formats exposition format 0.0.4. Bytes are added to a
server's totals when a connection closes, as for pen's status page.

:class:`MetricsProtocol` answers one request per connection and closes::

    connection_made -- over MAX_CONNECTIONS open: closed at once (new ones are refused,
                       so a flood of idle scrapers cannot grow without bound);
                       else a TIMEOUT timer is armed
      data_received -- buffered up to HEAD_MAX; at the blank line: ``GET /metrics`` gets
                       200 and the page, any other request 404; then close
      timer fires or HEAD_MAX exceeded -- abort, nothing answered

Nothing here awaits: a scraper costs the loop one callback per chunk and one render, so the
data path never waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import cast

from .logsink import PenLog
from .servers import Server
from .state import PenState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEAD_MAX = 8192
"""Bytes of request head read at most."""
TIMEOUT = 5.0
"""Seconds a scrape connection may stay open in all."""
MAX_CONNECTIONS = 16
"""Scrape connections open at once; more are closed as they arrive."""


def escape_label(value: str) -> str:
    """A label value as the text format writes it (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, str]) -> str:
    return ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs.items())


def _family(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> Iterator[str]:
    yield f"# HELP {name} {text}\n"
    yield f"# TYPE {name} {kind}\n"
    for labels, value in samples:
        number = repr(value)  # ints whole (byte counts pass 2**53 in time), floats round-trip
        yield f"{name}{{{labels}}} {number}\n" if labels else f"{name} {number}\n"


def _servers(core: PenState) -> list[tuple[str, Server]]:
    """Each backend with its label set, the emergency and abuse servers last."""
    table = core.table
    named = [(str(i), s) for i, s in enumerate(table.servers)]
    named += [(name, s) for name, s in (("emergency", table.emergency), ("abuse", table.abuse))
              if s is not None]
    return [(_labels({"server": n, "address": s.address, "port": str(s.port)}), s)
            for n, s in named]


_SERVER_FAMILIES: list[tuple[str, str, str, Callable[[Server], float]]] = [
    ("pen_server_open_connections", "gauge", "Connections open (connecting included).",
     lambda s: s.conns),
    ("pen_server_connections_total", "counter", "Connections started to the server.",
     lambda s: s.total),
    ("pen_server_sent_bytes_total", "counter",
     "Bytes from clients to the server (added when a connection closes).", lambda s: s.sx),
    ("pen_server_received_bytes_total", "counter",
     "Bytes from the server to clients (added when a connection closes).", lambda s: s.rx),
    ("pen_server_connect_failures_total", "counter", "Connects refused or timed out.",
     lambda s: s.failures),
]


def render(core: PenState, log: PenLog, now: float) -> str:
    """The metrics page at ``now`` (epoch seconds)."""
    servers = _servers(core)
    table = core.table
    parts: list[str] = []
    for name, kind, text, value in _SERVER_FAMILIES:
        parts += _family(name, kind, text, [(labels, value(s)) for labels, s in servers])
    listed = [(labels, s, table.blacklisted(s, now)) for labels, s in servers]
    parts += _family("pen_server_blacklisted", "gauge", "1 while the server is blacklisted.",
                     [(labels, float(black)) for labels, _, black in listed])
    parts += _family("pen_server_blacklisted_until_seconds", "gauge",
                     "Epoch when the blacklisting ends (0 when not blacklisted).",
                     [(labels, s.status + table.blacklist_time if black else 0.0)
                      for labels, s, black in listed])
    counts = table.selections
    parts += _family("pen_selections_total", "counter",
                     "Initial server choices, by the rule that made them.",
                     [(_labels({"algorithm": rule}), count)
                      for rule, count in dataclasses.asdict(counts).items()])
    parts += _family("pen_clients", "gauge", "Clients in the client table.",
                     [("", len(core.clients))])
    parts += _family("pen_clients_max", "gauge", "Size of the client table (-c).",
                     [("", core.clients.size)])
    parts += _family("pen_log_lines_total", "counter", "pen.log lines and netlog datagrams "
                     "written.", [("", log.written)])
    parts += _family("pen_log_dropped_total", "counter",
                     "pen.log lines and netlog datagrams the system refused.",
                     [("", log.dropped)])
    return "".join(parts)


def response(head: bytes, page: Callable[[], str]) -> bytes:
    """The whole HTTP response to a request ``head``: the page for GET /metrics, else 404."""
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0]
    if method == b"GET" and target.partition(b"?")[0] == b"/metrics":
        status, kind, body = b"200 OK", CONTENT_TYPE.encode(), page().encode()
    else:
        status, kind, body = b"404 Not Found", b"text/plain", b"not found\n"
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" \
        b"%s" % (status, kind, len(body), body)


class MetricsListener:
    """What the scrape connections share: the page source and the count of open ones."""

    def __init__(self, page: Callable[[], str], loop: asyncio.AbstractEventLoop) -> None:
        self.page = page
        self.loop = loop
        self.open = 0
        self.refused = 0

    def protocol(self) -> MetricsProtocol:
        """A protocol for one accepted scrape connection."""
        return MetricsProtocol(self)


class MetricsProtocol(asyncio.Protocol):
    """One scrape: read the head (bounded in size and time), answer, close."""

    def __init__(self, listener: MetricsListener) -> None:
        self.listener = listener
        self.buffer: bytes | None = b""
        """The head read so far; None once answered."""
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires for each accepted scrape connection."""
        self.transport = cast(asyncio.Transport, transport)
        listener = self.listener
        if listener.open >= MAX_CONNECTIONS:
            listener.refused += 1
            self.transport.abort()
            return
        listener.open += 1
        self.counted = True
        self.timer = listener.loop.call_later(TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        """Fires for each chunk of the request: answer at the end of the head."""
        if self.buffer is None:
            return
        buffer = self.buffer = self.buffer + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            end = buffer.find(b"\n\n")
        if end >= 0:
            self.buffer = None
            self.transport.write(response(buffer[:end], self.listener.page))
            self.transport.close()
        elif len(buffer) > HEAD_MAX:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the connection is gone, answered or not."""
        if self.timer is not None:
            self.timer.cancel()
        if self.counted:
            self.listener.open -= 1
