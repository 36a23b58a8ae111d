"""The -w status page (pen's webstats): servers, clients and the connection count as HTML."""

from __future__ import annotations

import html
import time

from .state import PenState


def _row(cells: list[object]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>\n"


def _header(cells: list[str]) -> str:
    return '<tr bgcolor="#80f080">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"


def render_status(core: PenState, connections: int, now: float) -> str:
    """The status page at ``now`` (local time, as pen writes it)."""
    table = core.table
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    parts = [
        "<html><head><title>Pen status page</title></head><body>\n",
        "<h1>Pen status page</h1>\n",
        f"Time {stamp}, {len(table)} servers, {table.cursor} current<p>\n",
        '<table bgcolor="#c0c0c0">\n',
        _header(["server", "address", "status", "port", "connections", "max soft",
                 "max hard", "sent", "received", "weight", "prio"]),
    ]
    for i, s in enumerate(table.servers):
        status = int(s.status) if s.status > 0 else 0
        parts.append(_row([i, s.address, status, s.port, s.conns, s.maxc, s.hard,
                           s.sx, s.rx, s.weight, s.prio]))
    parts += [
        "</table>\n<h2>Active clients</h2>\n",
        f"Max number of clients: {core.clients.size}<p>\n",
        '<table bgcolor="#c0c0c0">\n',
        _header(["client", "address", "age(secs)", "last server", "connects", "sent", "received"]),
    ]
    for i, c in enumerate(core.clients):
        parts.append(_row([i, c.address, int(now - c.last), c.server, c.connects, c.sx, c.rx]))
    parts += [
        "</table>\n<h2>Active connections</h2>\n",
        f"Number of connections: {core.settings.conn_max} max, {connections} used<p>\n",
        "</body></html>\n",
    ]
    return "".join(parts)
