"""Addresses and host names as they appear in a log field: what to look up, what to trust."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_NAME = 253


def canonical_address(field: bytes) -> str | None:
    """The address to look up for a log field, or None when the field is not an IP address.

    IPv4-mapped IPv6 (``::ffff:192.0.2.1``, written by dual-stack servers) is looked up as
    the IPv4 address it carries, because that is where its PTR lives.
    """
    if not field or len(field) > 45 or b"%" in field:
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
    """True when ``name`` is safe to write into a log as a host name.

    Letters, digits and hyphens in dot-separated labels of at most 63 characters, at most
    253 in all, and not itself an IP address: a hostile PTR record must not be able to
    inject spaces, quotes or control bytes into a log, or pose as another client address.
    """
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > _MAX_NAME:
        return False
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False
