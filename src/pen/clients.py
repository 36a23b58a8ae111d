"""The client table: which backend each client address was last sent to (pen's tracking).

A client is one address: the port is ignored, IPv6 addresses are compared whole (pen compared
one byte) and every Unix-socket peer is the same client ``""``. The table holds at most
``size`` clients; a new client takes the least recently seen slot when it is full. With
``tracking`` > 0 a client not seen for that many seconds is forgotten (its next connection is
a new client), which is pen's intent for -T.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from .servers import NO_SERVER


@dataclass(slots=True)
class ClientRecord:
    """What pen remembers of one client address."""

    address: str
    server: int = NO_SERVER
    last: float = 0.0
    connects: int = 0
    sx: int = 0
    rx: int = 0


class ClientTable:
    """Client address -> ClientRecord, least recently seen first (an O(1) LRU)."""

    __slots__ = ("_records", "size", "tracking")

    def __init__(self, size: int = 2048, tracking: float = 0) -> None:
        self._records: OrderedDict[str, ClientRecord] = OrderedDict()
        self.size = size
        self.tracking = tracking

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ClientRecord]:
        return iter(self._records.values())

    def get(self, address: str) -> ClientRecord | None:
        """The record of ``address`` without touching it."""
        return self._records.get(address)

    def expired(self, record: ClientRecord, now: float) -> bool:
        """True when tracking is on and the client was last seen more than ``tracking`` s ago."""
        return self.tracking > 0 and record.last + self.tracking < now

    def touch(self, address: str, now: float) -> ClientRecord:
        """Record a connection (or datagram) from ``address`` at ``now`` and return its record.

        An unknown or expired client starts over with NO_SERVER; when the table is full
        the least recently seen client is dropped.
        """
        records = self._records
        record = records.get(address)
        if record is None or self.expired(record, now):
            if record is None:
                while len(records) >= self.size:
                    records.popitem(last=False)
            record = records[address] = ClientRecord(address)
        records.move_to_end(address)
        record.last = now
        record.connects += 1
        return record

    def resize(self, size: int) -> None:
        """Grow the table (pen's tables only grow)."""
        self.size = max(self.size, size)

    def recent(self, now: float, seconds: float) -> list[ClientRecord]:
        """Clients seen in the last ``seconds``, most recent last."""
        return [r for r in self._records.values() if now - r.last <= seconds]
