"""Server selection as pure functions of (table, client, now): pen's initial_server,
try_server and failover order (spec section 3).

Order of the initial choice, first rule that applies wins:

1. the client fails ``client_acl``: the abuse server, or NO_SERVER without -B;
2. unless -r, the server the client used last (its availability is left to try_server);
3. -prio: the lowest prio among available servers;
4. -W: the least ``256 * conns // weight`` among available servers with a weight;
5. -h: a hash of the client address, the same number C pen computes for IPv4;
6. round robin from the shared cursor, starting after it.

A refused or failed choice moves on to the next index (after the failed one, wrapping, each
server once), then to the emergency server; -s and the abuse/emergency servers never fail over.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from .acl import Acls
from .clients import ClientRecord
from .config import Settings
from .servers import ABUSE, EMERGENCY, NO_SERVER, Server, ServerTable


def hash_key(address: str, port: int, roundrobin: bool) -> int:
    """The number pen hashes for a client.

    IPv4: the four address bytes read as a little-endian uint32 (pen reads the network-order
    in_addr on x86), XOR the port's network-order bytes read the same way when -r is set.
    IPv6: the last address byte. Unix peers: 0.
    """
    if not address:
        return 0
    ip = ipaddress.ip_address(address.partition("%")[0])
    packed = ip.packed
    if ip.version == 6:
        return packed[-1]
    key = int.from_bytes(packed, "little")
    if roundrobin:
        key ^= ((port & 0xFF) << 8) | (port >> 8)
    return key


def round_robin(table: ServerTable, now: float) -> int:
    """The next available server after the cursor (wrapping, the cursor's own server last)."""
    n = len(table.servers)
    index = table.cursor
    for _ in range(n):
        index = index + 1 if index + 1 < n else 0
        if table.available(index, now):
            table.cursor = index
            return index
    return NO_SERVER


def by_prio(table: ServerTable, now: float) -> int:
    """The available server with the lowest prio (lowest index on ties)."""
    best = NO_SERVER
    for index, server in enumerate(table.servers):
        if table.available(index, now) and (best < 0 or server.prio < table.servers[best].prio):
            best = index
    return best


def by_weight(table: ServerTable, now: float) -> int:
    """The available weighted server with the least load ``256 * conns // weight``."""
    best, best_load = NO_SERVER, 0
    for index, server in enumerate(table.servers):
        if server.weight > 0 and table.available(index, now):
            load = 256 * server.conns // server.weight
            if best < 0 or load < best_load:
                best, best_load = index, load
    return best


def initial_server(
    table: ServerTable,
    settings: Settings,
    acls: Acls,
    client: ClientRecord,
    port: int,
    now: float,
) -> int:
    """The first server to try for ``client`` connecting from ``port`` (rules in the module doc)."""
    counts = table.selections
    if not acls.permits(settings.client_acl, client.address):
        counts.denied += 1
        return ABUSE if table.abuse is not None else NO_SERVER
    n = len(table.servers)
    if not settings.roundrobin and 0 <= client.server < n:
        counts.sticky += 1
        return client.server
    if n == 0:
        return NO_SERVER
    if settings.prio:
        counts.prio += 1
        return by_prio(table, now)
    if settings.weight:
        counts.weight += 1
        return by_weight(table, now)
    if settings.hash:
        counts.hash += 1
        return hash_key(client.address, port, settings.roundrobin) % n
    counts.roundrobin += 1
    return round_robin(table, now)


def try_server(
    table: ServerTable, index: int, client: ClientRecord, acls: Acls, now: float
) -> Server | None:
    """The server at ``index`` if it may take this client now, else None.

    Refused: no such server, an unused slot, a blacklisted server, a per-server ACL that
    denies the client, or a full server (``maxc``; ``hard`` for the client's own server).
    """
    server = table.get(index)
    if server is None or server.unused or table.blacklisted(server, now):
        return None
    if server.acl >= 0 and not acls.permits(server.acl, client.address):
        return None
    if not table.admits(server, client.server == index):
        return None
    return server


def failover_order(initial: int, count: int, stubborn: bool) -> Iterator[int]:
    """Servers to try after ``initial`` failed: the scan after it, then the emergency server."""
    if stubborn or initial in (ABUSE, EMERGENCY):
        return
    if initial != NO_SERVER:
        for step in range(1, count):
            yield (initial + step) % count
    yield EMERGENCY
