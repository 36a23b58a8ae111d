"""Addresses and host names as they appear in a log field: what to look up, what to trust."""

from __future__ import annotations

import ipaddress
import re
import socket

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_NAME = 253
_ADDRESS_BYTES = b"0123456789abcdefABCDEF.:"


def canonical_address(field: bytes) -> str | None:
    """The address to look up for a log field, or None when the field is not an IP address.

    IPv4-mapped IPv6 (``::ffff:192.0.2.1``, written by dual-stack servers) is looked up as
    the IPv4 address it carries, because that is where its PTR lives. A field with a byte
    no address has (a host name, ``-``) is turned away before any parsing, cheaply enough
    that such fields need not be remembered.
    """
    if not field or len(field) > 45 or field.translate(None, _ADDRESS_BYTES):
        return None
    try:
        address = ipaddress.ip_address(field.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_ipv6(address: str) -> bool:
    """True for a canonical IPv6 address (forward-confirmed with AAAA rather than A)."""
    return ":" in address


def valid_hostname(name: str) -> bool:
    """True when ``name`` is safe to write into a log as a host name: the one rule every
    name passes, whatever its source (DNS, ``--cache``, ``--hosts``).

    Letters, digits and hyphens in dot-separated labels of at most 63 characters, at most
    253 in all, so that no space, quote or control byte gets into a log. And nothing another
    tool would read as an IPv4 address, so that a name cannot pose as another client: the
    last label is not all digits (RFC 3696 section 2: ``10.0.0.01``, ``1.2.3.4.5``,
    ``0x7f.1``), and ``inet_aton`` does not accept it (``0x7f``, ``0x7f.0x0.0x0.0x1``).
    """
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > _MAX_NAME:
        return False
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return False
    try:
        socket.inet_aton(name)
    except OSError:
        return True
    return False
