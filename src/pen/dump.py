"""Traffic dumps for pen's -d -d -d: every chunk in hex, or as text with -a (``ascii``).

Debug levels below 3 get other protocols (trace.py), so the data path pays nothing for this.
"""

from __future__ import annotations

import logging

from .tcp import ClientSide, ServerSide
from .trace import TracingClientSide

logger = logging.getLogger("pen.dump")

WIDTH = 16
"""Bytes per line of a hex dump."""

_TEXT = bytes(b if 32 <= b < 127 or b in (9, 10) else ord(".") for b in range(256))
"""Printable ASCII, tab and newline as they are; every other byte as '.'."""


def render(data: bytes, text: bool) -> str:
    """One chunk as pen's dump shows it: hex bytes, ``WIDTH`` a line, or the text."""
    if text:
        return data.translate(_TEXT).decode("ascii")
    return "\n".join(data[i : i + WIDTH].hex(" ") for i in range(0, len(data), WIDTH))


def _dump(client: ClientSide, source: str, data: bytes) -> None:
    server = client.server
    backend = f"{server.address}:{server.port}" if server is not None else "-"
    logger.debug("%s sent %d bytes (client %s, server %s):\n%s", source, len(data),
                 client.address, backend, render(data, client.proxy.core.settings.ascii))


class DumpingServerSide(ServerSide):
    """A backend connection that dumps what the backend sends."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        """Dump the chunk, then pass it to the client."""
        _dump(self.client, "server", data)
        super().data_received(data)


class DumpingClientSide(TracingClientSide):
    """A client connection that traces its events and dumps both directions' bytes."""

    __slots__ = ()
    upstream_class = DumpingServerSide

    def data_received(self, data: bytes) -> None:
        """Dump the chunk, then handle it as usual."""
        _dump(self, "client", data)
        super().data_received(data)
