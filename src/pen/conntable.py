"""Connection numbers for the control port: each open client connection gets the lowest free
number, as a slot of pen's connection table, so ``connection N`` and ``close N`` can name it.

The table is the set of open connections the balancer keeps anyway (a dict: ``add``,
``discard``, ``len``, iteration); numbers are given when the control port asks, so accepting
pays nothing for them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

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


class ConnectionTable(dict[T, None]):
    """The open connections, in accept order, numbered when the control port first looks.

    A dict used as an ordered set: ``add`` (``setdefault``) and ``len`` are single C calls,
    so accepting pays nothing for the numbering. Numbers are handed out, lowest free first
    and in accept order, to the connections not numbered yet each time one is asked for; a
    number stays with its connection until ``discard``. As nobody sees a number before
    asking, this is the numbering pen's slot table would show.
    """

    __slots__ = ("_numbers", "_by_number", "_free", "_next")

    add = dict.setdefault
    """Add a new connection (its value is None)."""

    def __init__(self) -> None:
        super().__init__()
        self._numbers: dict[T, int] = {}
        self._by_number: dict[int, T] = {}
        self._free: list[int] = []
        self._next = 0

    def __iter__(self) -> Iterator[T]:
        """A snapshot: connections may close while the caller walks them."""
        return iter(list(self.keys()))

    def discard(self, conn: T) -> None:
        """Forget a closed connection and free its number, if it was given one."""
        self.pop(conn, None)
        number = self._numbers.pop(conn, None)
        if number is not None:
            del self._by_number[number]
            heapq.heappush(self._free, number)

    def _sync(self) -> None:
        """Number the connections opened since the last look."""
        numbers = self._numbers
        if len(numbers) == len(self):
            return
        by_number, free = self._by_number, self._free
        for conn in self.keys():
            if conn not in numbers:
                number = heapq.heappop(free) if free else self._next
                if number == self._next:
                    self._next += 1
                numbers[conn] = number
                by_number[number] = conn

    def numbered(self, number: int) -> T | None:
        """The connection numbered ``number``, None for a free slot."""
        self._sync()
        return self._by_number.get(number)

    def number(self, conn: T) -> int:
        """The number of an open connection, -1 if unknown."""
        self._sync()
        return self._numbers.get(conn, -1)

    def by_number(self) -> list[tuple[int, T]]:
        """(number, connection) pairs in number order."""
        self._sync()
        return sorted(self._by_number.items(), key=lambda item: item[0])
