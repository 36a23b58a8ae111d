"""Settings and the address specs of pen's command line (backends, LISTEN), parsed without I/O.

Spec grammar (spec section 2):

- backend ``host[:port[:maxc[:hard[:weight[:prio]]]]]``; an IPv6 host is written ``[addr]``;
  a host holding ``/`` is a Unix socket path; a missing port is the LISTEN port.
- LISTEN ``[host:]port``, ``:::port`` or ``[::]:port`` (split at the last colon), or a path.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from .errors import ResolveError, SpecError


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A backend as written on the command line, before name resolution."""

    host: str
    port: int
    maxc: int = 0
    hard: int = 0
    weight: int = 0
    prio: int = 0


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """Where pen accepts clients: a TCP/UDP host and port, or a Unix socket path."""

    host: str
    port: int
    path: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_port(text: str, kind: str, udp: bool = False) -> int:
    """A port number or service name (``pop3``, ``http``) as a number in 1..65535.

    :raises SpecError: for anything else (pen silently used port 0, an unusable server).
    """
    if text.isdigit():
        port = int(text)
        if 0 < port < 65536:
            return port
        raise SpecError(kind, text, "port out of range 1..65535")
    try:
        return socket.getservbyname(text, "udp" if udp else "tcp")
    except OSError:
        raise SpecError(kind, text, "unknown service name") from None


def _split_host(text: str, kind: str) -> tuple[str, str]:
    """Split ``host`` or ``[v6]`` from the rest of a backend spec."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SpecError(kind, text, "missing ']'")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SpecError(kind, text, "expected ':' after ']'")
        return text[1:end], rest[1:]
    host, _, rest = text.partition(":")
    return host, rest


def parse_server(text: str, default_port: int, udp: bool = False) -> ServerSpec:
    """Parse ``host[:port[:maxc[:hard[:weight[:prio]]]]]``; missing numbers are 0 as in pen.

    :param default_port: the LISTEN port, used when the spec has none.
    :raises SpecError: empty host, bad port, non-numeric limits or too many fields.
    """
    kind = "server"
    if "/" in text and not text.startswith("["):
        return ServerSpec(text, 0)
    host, rest = _split_host(text, kind)
    if not host:
        raise SpecError(kind, text, "empty host")
    fields = rest.split(":") if rest else []
    if len(fields) > 5:
        raise SpecError(kind, text, "too many fields")
    port = parse_port(fields[0], kind, udp) if fields and fields[0] else default_port
    numbers = []
    for value in fields[1:]:
        if not value.isdigit():
            raise SpecError(kind, text, f"{value!r} is not a number")
        numbers.append(int(value))
    return ServerSpec(host, port, *numbers)


def parse_listen(text: str, udp: bool = False) -> ListenSpec:
    """Parse a LISTEN or control spec: ``[host:]port``, ``:::port``, ``[::]:port`` or a path.

    :raises SpecError: a bad port or an empty spec.
    """
    kind = "listen address"
    if not text:
        raise SpecError(kind, text, "empty")
    if "/" in text:
        return ListenSpec("", 0, text)
    if text.startswith("["):
        host, rest = _split_host(text, kind)
        if not rest:
            raise SpecError(kind, text, "missing port")
        return ListenSpec(host, parse_port(rest, kind, udp))
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "0.0.0.0"
    elif not host:
        host = "0.0.0.0"
    return ListenSpec(host, parse_port(port, kind, udp))


def resolve_host(host: str, port: int, udp: bool = False) -> tuple[int, str]:
    """Resolve a backend host to ``(family, address)``: the first getaddrinfo result, as pen.

    :raises ResolveError: when the name does not resolve.
    """
    if "/" in host:
        return socket.AF_UNIX, host
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except (OSError, UnicodeError) as exc:
        raise ResolveError(host, str(exc)) from None
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


@dataclass(slots=True)
class TlsSettings:
    """TLS termination files (-E/-K/-G/-A) and flags (-R, -L)."""

    cert: str
    key: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None
    require_client_cert: bool = False
    protocol: str = "ssl23"


@dataclass(slots=True)
class Settings:
    """Everything pen's options and commands set; mutable because commands change it at runtime."""

    listen: ListenSpec | None = None
    servers: list[ServerSpec] = field(default_factory=list)
    emergency: ServerSpec | None = None
    abuse: ServerSpec | None = None
    blacklist: int = 30
    timeout: float = 3.0
    tracking: int = 0
    clients_max: int = 2048
    conn_max: int = 500
    backlog: int = 500
    hash: bool = False
    roundrobin: bool = False
    stubborn: bool = False
    weight: bool = False
    prio: bool = False
    http: bool = False
    udp: bool = False
    foreground: bool = False
    exit_enabled: bool = False
    debug: int = 0
    ascii: bool = False
    """-a / ``ascii``: traffic dumps (debug 3 and up) as text instead of hex."""
    multi_accept: int | None = None
    """-m: accepts per readiness event; None lets the loop drain the backlog (uvloop)."""
    client_acl: int = 0
    control_acl: int = 0
    grace: float = 10.0
    log: str | None = None
    web_stats: str | None = None
    pidfile: str | None = None
    user: str | None = None
    chroot: str | None = None
    control: str | None = None
    config_file: str | None = None
    tls: TlsSettings | None = None
    proxy_protocol: int = 0
    udp_idle: float = 60.0
    idle_timeout: int = 0
    """``idle_timeout N``: close a connection with no byte either way for N s (0: off, as pen)."""
    head_timeout: float = 30.0
    """--head-timeout: a request head must be complete this long after it began (-l/-H; 0 off)."""
    metrics: str | None = None
    """--metrics: where the Prometheus text page is served, ``[host:]port``."""
    listen_text: str = ""
    """LISTEN as typed on the command line (the ``listen`` command and ``write`` show it)."""
    idlers: int = 0
    """``idlers N``: idle upstream connections kept open, servers chosen round robin."""
    tcp_fastclose: str = "off"
    """``tcp_fastclose up|down|both|off``: which side's EOF closes the whole connection."""
    source: str | None = None
    """``source IP``: the local address upstream connects bind to."""
    transparent: bool = False
    """``transparent``: upstream connects bind to the client's own address (IP_TRANSPARENT)."""
    keepalive: bool = False
    """``keepalive``: SO_KEEPALIVE on upstream sockets."""
    tarpit_acl: int = -1
    """``tarpit_acl N``: kept and shown as pen does (tarpitting is part of DSR, absent here)."""
