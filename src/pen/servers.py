"""Backends and their counters: the server table with blacklist and soft/hard connection limits.

Indices follow pen: 0..n-1 are regular backends, EMERGENCY (-1) is the -e server, ABUSE (-2)
the -B server and NO_SERVER (-3) means "none chosen".
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field

EMERGENCY = -1
ABUSE = -2
NO_SERVER = -3


@dataclass(slots=True)
class Server:
    """One backend: resolved address, limits, and live counters.

    ``conns`` counts connections from the moment pen starts connecting until they close, so
    in-progress connects count against ``maxc`` (pen counted only completed ones and
    decremented for connections that never connected).
    """

    address: str
    port: int
    family: int = socket.AF_INET
    maxc: int = 0
    hard: int = 0
    weight: int = 0
    prio: int = 0
    acl: int = -1
    conns: int = 0
    total: int = 0
    """Connections started (connects begun, failed ones included), for --metrics."""
    failures: int = 0
    """Connects refused or timed out."""
    sx: int = 0
    rx: int = 0
    status: float = -math.inf
    """Time of the last failure; blacklisted while younger than the blacklist time."""

    @property
    def unused(self) -> bool:
        """An unusable slot: no address or port (pen's 0.0.0.0 placeholder); paths need no port."""
        if self.family == socket.AF_UNIX:
            return not self.address
        return self.port == 0 or self.address in ("", "0.0.0.0")


@dataclass(slots=True)
class Selections:
    """How many initial choices each rule of policy.initial_server made (for --metrics)."""

    denied: int = 0
    sticky: int = 0
    prio: int = 0
    weight: int = 0
    hash: int = 0
    roundrobin: int = 0


@dataclass(slots=True)
class ServerTable:
    """The regular backends plus the emergency and abuse servers, and the round-robin cursor."""

    servers: list[Server] = field(default_factory=list)
    emergency: Server | None = None
    abuse: Server | None = None
    blacklist_time: float = 30.0
    cursor: int = 0
    selections: Selections = field(default_factory=Selections)

    def __len__(self) -> int:
        return len(self.servers)

    def get(self, index: int) -> Server | None:
        """The server at ``index`` (EMERGENCY, ABUSE too); None for NO_SERVER or out of range."""
        if index == EMERGENCY:
            return self.emergency
        if index == ABUSE:
            return self.abuse
        if 0 <= index < len(self.servers):
            return self.servers[index]
        return None

    def grow(self, index: int) -> Server:
        """The server at ``index``, adding unused slots up to it (the ``server N ...`` command)."""
        while len(self.servers) <= index:
            self.servers.append(Server("0.0.0.0", 0))
        return self.servers[index]

    def blacklisted(self, server: Server, now: float) -> bool:
        """True while the server's last failure is younger than the blacklist time."""
        return now - server.status < self.blacklist_time

    def available(self, index: int, now: float) -> bool:
        """A regular server that is neither blacklisted nor an unused slot."""
        server = self.servers[index]
        return not server.unused and not self.blacklisted(server, now)

    def fail(self, server: Server, now: float) -> None:
        """Record a refused or timed-out connect: the server is blacklisted from ``now``."""
        server.status = now
        server.failures += 1

    def succeed(self, server: Server) -> None:
        """A connect succeeded: forget the last failure."""
        server.status = -math.inf

    def set_blacklist(self, server: Server, seconds: float, now: float) -> None:
        """Blacklist for exactly ``seconds`` from now; 0 clears it (``server N blacklist T``)."""
        server.status = -math.inf if seconds <= 0 else now + seconds - self.blacklist_time

    @staticmethod
    def admits(server: Server, sticky: bool) -> bool:
        """Soft/hard limits: full at ``maxc``, returning clients may go on up to ``hard``."""
        if server.maxc == 0 or server.conns < server.maxc:
            return True
        return sticky and server.conns < server.hard
