"""The -w status page (pen's webstats, also the ``status`` reply): servers with their state
and traffic, the client table and the open connections, as one HTML page.

The page keeps pen's title, time line and table colours, so anyone used to pen's page finds
their way; it adds what pen's lacks: whether each server is up, blacklisted (and for how many
more seconds) or an unused slot, live byte counts that include open connections (pen counted
a connection's bytes only once it closed) and each connection's client and server by name.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .conntable import LiveTraffic
from .servers import Server
from .state import PenState

STYLE = """<style>
body { font-family: sans-serif; }
table { border-collapse: collapse; margin-bottom: 1em; }
td, th { border: 1px solid #909090; padding: 2px 8px; text-align: right; }
th { background: #80f080; }
td.text { text-align: left; }
</style>
"""


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """One open client connection as the page shows it."""

    number: int
    client: str
    server: int
    state: str
    sent: int
    """Bytes from the client to the server so far."""
    received: int
    """Bytes from the server to the client so far."""


def _cell(value: object) -> str:
    text = html.escape(str(value))
    return f'<td class="text">{text}</td>' if isinstance(value, str) else f"<td>{text}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>\n"
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>\n" for row in rows)
    return f'<table bgcolor="#c0c0c0">\n{head}{body}</table>\n'


def server_state(core: PenState, server: Server, now: float) -> str:
    """``up``, ``blacklisted, N s left`` or ``unused`` (a slot without address or port)."""
    table = core.table
    if server.unused:
        return "unused"
    if table.blacklisted(server, now):
        left = server.status + table.blacklist_time - now
        return f"blacklisted, {left:.0f} s left"
    return "up"


def _server_rows(core: PenState, traffic: LiveTraffic, now: float) -> list[list[object]]:
    rows: list[list[object]] = []
    for index, s in enumerate(core.table.servers):
        sent, received = traffic.by_server.get(index, (0, 0))
        rows.append([index, s.address, server_state(core, s, now), s.port, s.conns, s.maxc,
                     s.hard, s.sx + sent, s.rx + received, s.weight, s.prio])
    return rows


def _client_rows(core: PenState, traffic: LiveTraffic, now: float) -> list[list[object]]:
    rows: list[list[object]] = []
    for c in core.clients:
        sent, received = traffic.by_client.get(c.address, (0, 0))
        rows.append([c.address, int(now - c.last), c.server, c.connects, c.sx + sent,
                     c.rx + received])
    return rows


def render_status(core: PenState, live: Sequence[ConnectionRow], traffic: LiveTraffic,
                  now: float) -> str:
    """The status page at ``now`` (local time, as pen writes it).

    :param live: the open connections; ``traffic``: their bytes, by server and by client.
    """
    table = core.table
    settings = core.settings
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    clients = _client_rows(core, traffic, now)
    connections = [[c.number, c.client, c.server, c.state, c.sent, c.received] for c in live]
    return "".join([
        "<html><head><title>Pen status page</title>\n", STYLE, "</head><body>\n",
        "<h1>Pen status page</h1>\n",
        f"<p>Time {stamp}, {len(table)} servers, {table.cursor} current</p>\n",
        _table(["server", "address", "status", "port", "connections", "max soft",
                "max hard", "sent", "received", "weight", "prio"],
               _server_rows(core, traffic, now)),
        "<h2>Active clients</h2>\n",
        f"<p>Max number of clients: {core.clients.size}, {len(clients)} known</p>\n",
        _table(["client", "age(secs)", "last server", "connects", "sent", "received"],
               clients),
        "<h2>Active connections</h2>\n",
        f"<p>Number of connections: {settings.conn_max} max, {len(live)} used</p>\n",
        _table(["connection", "client", "server", "state", "sent", "received"], connections),
        "</body></html>\n",
    ])
