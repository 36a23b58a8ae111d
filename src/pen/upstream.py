"""How an upstream connect is opened: plainly, or from a socket set up first for ``source``
(bind to a local address), ``transparent`` (bind to the client's own IPv4 address with
IP_TRANSPARENT) and ``keepalive`` (SO_KEEPALIVE).

The plain route stays the fast one (a single ``create_connection``); the set-up route costs a
Python socket and one more await, and is taken only while one of those commands is on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from .config import Settings
from .servers import Server

IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)

Factory = Callable[[], asyncio.BaseProtocol]


def needs_setup(settings: Settings) -> bool:
    """True while upstream sockets need options or a bind before they connect."""
    return bool(settings.source or settings.transparent or settings.keepalive)


def open_upstream(
    loop: asyncio.AbstractEventLoop, factory: Factory, server: Server, settings: Settings,
    client: str,
) -> Coroutine[Any, Any, Any]:
    """The coroutine that connects to a TCP ``server`` for a client at address ``client``."""
    if not needs_setup(settings):
        return loop.create_connection(factory, server.address, server.port)
    return _set_up_connect(loop, factory, server, settings, client)


def _local_address(server: Server, settings: Settings, client: str) -> tuple[str, bool] | None:
    """The address to bind to, and whether IP_TRANSPARENT is needed for it."""
    if settings.transparent and server.family == socket.AF_INET and client.count(".") == 3:
        return client, True
    source = settings.source
    if source and (":" in source) == (server.family == socket.AF_INET6):
        return source, False
    return None


async def _set_up_connect(
    loop: asyncio.AbstractEventLoop, factory: Factory, server: Server, settings: Settings,
    client: str,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    sock = socket.socket(server.family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if settings.keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        local = _local_address(server, settings, client)
        if local is not None:
            address, transparent = local
            if transparent:
                sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            sock.bind((address, 0))
        await loop.sock_connect(sock, (server.address, server.port))
    except BaseException:
        sock.close()
        raise
    return await loop.create_connection(factory, sock=sock)


def source_error(address: str) -> str | None:
    """Why upstream sockets cannot bind to ``address`` (not an address of this host)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def transparent_error() -> str | None:
    """Why IP_TRANSPARENT cannot be set here (it needs CAP_NET_ADMIN, i.e. root)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    except OSError as exc:
        return f"IP_TRANSPARENT needs CAP_NET_ADMIN (root): {exc.strerror or exc}"
    return None
