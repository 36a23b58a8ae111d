"""Connection numbers for the control port: each open client connection gets the lowest free
number, as a slot of pen's connection table, so ``connection N`` and ``close N`` can name it.

The table behaves as the set of open connections the balancer already keeps (``add``,
``discard``, ``len``, iteration) and adds the numbering: two dict operations and a heap
operation per connection.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

CONNECTING = 1
CONNECTED = 2
EOF_UP = 4
"""The backend half-closed (pen shows 6 for a connection whose server sent EOF)."""
EOF_DOWN = 8
"""The client half-closed."""


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What ``connection N`` shows; an unused slot is all zeros and -1 descriptors."""

    state: int = 0
    downfd: int = -1
    upfd: int = -1
    client: int = 0
    server: int = 0
    pend: int = 0


@dataclass(frozen=True, slots=True)
class LiveTraffic:
    """Bytes of the connections still open, which the tables add only when they close."""

    by_server: dict[int, tuple[int, int]]
    """Server index -> (bytes to it, bytes from it)."""
    by_client: dict[str, tuple[int, int]]
    """Client address -> (bytes to it, bytes from it)."""


NO_TRAFFIC = LiveTraffic({}, {})


class ConnectionTable(Generic[T]):
    """Open connections by number (lowest free number first)."""

    __slots__ = ("_numbers", "_by_number", "_free", "_next")

    def __init__(self) -> None:
        self._numbers: dict[T, int] = {}
        self._by_number: dict[int, T] = {}
        self._free: list[int] = []
        self._next = 0

    def add(self, conn: T) -> None:
        """Number a new connection."""
        if conn in self._numbers:
            return
        number = heapq.heappop(self._free) if self._free else self._next
        if number == self._next:
            self._next += 1
        self._numbers[conn] = number
        self._by_number[number] = conn

    def discard(self, conn: T) -> None:
        """Free a closed connection's number."""
        number = self._numbers.pop(conn, None)
        if number is not None:
            del self._by_number[number]
            heapq.heappush(self._free, number)

    def __len__(self) -> int:
        return len(self._numbers)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._numbers))

    def __contains__(self, conn: object) -> bool:
        return conn in self._numbers

    def get(self, number: int) -> T | None:
        """The connection numbered ``number``, None for a free slot."""
        return self._by_number.get(number)

    def number(self, conn: T) -> int:
        """The number of an open connection, -1 if unknown."""
        return self._numbers.get(conn, -1)

    def items(self) -> list[tuple[int, T]]:
        """(number, connection) pairs in number order."""
        return sorted(self._by_number.items(), key=lambda item: item[0])
