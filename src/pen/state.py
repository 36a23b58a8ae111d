"""The balancer's pure state: settings, server table, client table and ACLs in one object.

Both the data path (tcp.py, udp.py) and the command interpreter work on this object; the
effects that need I/O (reopening the log, exiting, writing the status page) go through the
``Hooks`` the driver installs, so the state itself never touches a socket or a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .acl import Acls
from .clients import ClientRecord, ClientTable
from .config import ListenSpec, ServerSpec, Settings, resolve_host
from .conntable import NO_TRAFFIC, ConnectionInfo, LiveTraffic
from .policy import failover_order, initial_server, try_server
from .servers import Server, ServerTable


class Hooks(Protocol):
    """Effects of commands that only the running balancer can perform."""

    def reopen_log(self, target: str | None) -> None:
        """Open ``target`` as the pen.log target (None: close the file), the old one kept on error.

        :raises OSError: the new target cannot be opened.
        """

    def request_exit(self) -> None:
        """Stop the balancer (the ``exit`` command with -X)."""

    def status_page(self) -> str | None:
        """Write the -w file and return its HTML, None without -w.

        :raises OSError: the file cannot be written.
        """

    def pid(self) -> int:
        """The balancer's process id."""

    def debug_changed(self) -> None:
        """Apply settings.debug to the running balancer's logging (the ``debug`` command)."""

    def connection(self, number: int) -> ConnectionInfo | None:
        """Connection ``number`` as ``connection N`` shows it; None for a free slot."""

    def close_connection(self, number: int) -> None:
        """Close connection ``number`` (both sides) if it is open."""

    def live_traffic(self) -> LiveTraffic:
        """Bytes of the open connections, for ``servers`` and ``recent``."""

    def socket_owner(self, fd: int) -> int:
        """The number of the connection using descriptor ``fd``, -1 if none."""

    def idlers_changed(self) -> int:
        """Open or close idlers to match settings.idlers; returns how many are open."""

    def conn_max_changed(self) -> None:
        """settings.conn_max grew: let clients waiting for a slot go on, accept again."""

    def source_error(self, address: str) -> str | None:
        """Why upstream sockets cannot be bound to ``address``, None if they can."""

    def transparent_error(self) -> str | None:
        """Why IP_TRANSPARENT cannot be used here, None if it can."""

    def move_listener(self, spec: ListenSpec) -> None:
        """Serve on ``spec`` instead of the current listener, which stays if this fails.

        :raises PenError: ``spec`` cannot be bound, or the listener cannot move (-U).
        """


class NullHooks:
    """Hooks for a state that is not serving (tests, option parsing, -o and -F at startup)."""

    def reopen_log(self, target: str | None) -> None:
        """Nothing to reopen: the balancer opens settings.log when it starts."""

    def request_exit(self) -> None:
        """Nothing to stop."""

    def status_page(self) -> str | None:
        """No status page without a running balancer."""
        return None

    def pid(self) -> int:
        """No process of its own."""
        return 0

    def debug_changed(self) -> None:
        """No logging to adjust."""

    def connection(self, number: int) -> ConnectionInfo | None:
        """No connections yet."""
        return None

    def close_connection(self, number: int) -> None:
        """No connections to close."""

    def live_traffic(self) -> LiveTraffic:
        """No connections, no traffic."""
        return NO_TRAFFIC

    def socket_owner(self, fd: int) -> int:
        """No connections own a socket."""
        return -1

    def idlers_changed(self) -> int:
        """Idlers start with the balancer."""
        return 0

    def conn_max_changed(self) -> None:
        """The balancer applies -x when it starts."""

    def source_error(self, address: str) -> str | None:
        """Checked when the balancer starts connecting."""
        return None

    def transparent_error(self) -> str | None:
        """Checked when the balancer starts connecting."""
        return None

    def move_listener(self, spec: ListenSpec) -> None:
        """Nothing is open yet: the balancer opens settings.listen when it starts."""


def make_server(spec: ServerSpec, udp: bool = False) -> Server:
    """Resolve a backend spec into a Server record.

    :raises ResolveError: the host does not resolve.
    """
    family, address = resolve_host(spec.host, spec.port, udp)
    return Server(
        address, spec.port, family, spec.maxc, spec.hard, spec.weight, spec.prio
    )


@dataclass(slots=True)
class PenState:
    """Everything selection and commands decide on."""

    settings: Settings = field(default_factory=Settings)
    table: ServerTable = field(default_factory=ServerTable)
    clients: ClientTable = field(default_factory=ClientTable)
    acls: Acls = field(default_factory=Acls)
    hooks: Hooks = field(default_factory=NullHooks)
    acl_defined: set[int] | None = None
    """While a config file runs: the ACL lists its ``acl`` lines have redefined so far."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PenState:
        """Build the tables from parsed options (resolving the backends).

        :raises ResolveError: a backend does not resolve.
        """
        udp = settings.udp
        table = ServerTable(
            [make_server(s, udp) for s in settings.servers],
            make_server(settings.emergency, udp) if settings.emergency else None,
            make_server(settings.abuse, udp) if settings.abuse else None,
            settings.blacklist,
        )
        clients = ClientTable(settings.clients_max, settings.tracking)
        return cls(settings, table, clients)

    def choose(
        self, address: str, port: int, now: float
    ) -> tuple[ClientRecord, int, Server | None]:
        """Note a connection from ``address``: its record, the first server to try, and that
        server if it takes the client now (None: fail over from that index)."""
        record = self.clients.touch(address, now)
        table = self.table
        index = initial_server(table, self.settings, self.acls, record, port, now)
        return record, index, try_server(table, index, record, self.acls, now)

    def failover(self, initial: int) -> Iterator[int]:
        """The servers to try, in order, once ``initial`` failed or refused."""
        return failover_order(initial, len(self.table), self.settings.stubborn)
