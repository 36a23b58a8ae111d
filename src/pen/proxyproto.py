"""The PROXY protocol header (v1 text, v2 binary) that tells a backend the real client."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


Endpoint = tuple[str, int]


def build_header(version: int, source: Endpoint | None, dest: Endpoint | None) -> bytes:
    """The header for a connection from ``source`` to ``dest``; UNKNOWN/LOCAL if either is None.

    Mixed families (an IPv6 client on an IPv4 listener cannot happen, but a Unix one can)
    are sent as UNKNOWN, which backends treat as "use the socket's own addresses".
    """
    src = ipaddress.ip_address(source[0].partition("%")[0]) if source else None
    dst = ipaddress.ip_address(dest[0].partition("%")[0]) if dest else None
    known = src is not None and dst is not None and src.version == dst.version
    if version == 1:
        if not known or source is None or dest is None:
            return b"PROXY UNKNOWN\r\n"
        family = b"TCP4" if src.version == 4 else b"TCP6"  # type: ignore[union-attr]
        return b"PROXY %s %s %s %d %d\r\n" % (
            family, str(src).encode(), str(dst).encode(), source[1], dest[1]
        )
    if not known or src is None or dst is None or source is None or dest is None:
        return V2_SIGNATURE + b"\x20\x00\x00\x00"
    body = src.packed + dst.packed + struct.pack("!HH", source[1], dest[1])
    kind = 0x11 if src.version == 4 else 0x21
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, kind, len(body)) + body


def proxy_header(version: int, transport: asyncio.BaseTransport) -> bytes:
    """The header for the client connection behind ``transport``."""
    peer = transport.get_extra_info("peername")
    local = transport.get_extra_info("sockname")
    sock = transport.get_extra_info("socket")
    inet = sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
    source = (str(peer[0]), int(peer[1])) if inet and peer else None
    dest = (str(local[0]), int(local[1])) if inet and local else None
    return build_header(version, source, dest)
