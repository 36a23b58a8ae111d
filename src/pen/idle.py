"""Which connections went idle, or let a request head trickle: a sweep over counters (no I/O).

The data path keeps byte counters anyway; the sweep, run about once a second only while
``idle_timeout`` or the head timeout is on, compares each connection's counters with those
it saw last time. Nothing is re-armed per chunk, so the timeouts cost nothing per byte, and
a connection is caught between N and N + one sweep period after its last byte.

    seen first, or its byte count moved  -> active since now
    byte count unchanged for >= idle     -> idle
    a head due (``head`` >= 0) with the same number of heads completed for >= limit -> slow head
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


class IdleSweep:
    """The marks of the previous sweep: per connection (bytes, since, heads, head since)."""

    __slots__ = ("_marks",)

    def __init__(self) -> None:
        self._marks: dict[Hashable, tuple[int, float, int, float]] = {}

    def sweep(self, conns: Iterable[tuple[K, int, int]], now: float, idle: float,
              head: float) -> tuple[list[K], list[K]]:
        """Mark ``(key, bytes so far, heads completed or -1 when no head is due)`` at ``now``.

        :param idle: seconds without a byte that make a connection idle (0: never).
        :param head: seconds a due head may take (0: no limit).
        :returns: the idle keys and the slow-head keys (a key is in one list at most).
        """
        old = self._marks
        marks: dict[Hashable, tuple[int, float, int, float]] = {}
        idle_keys: list[K] = []
        slow: list[K] = []
        for key, activity, heads in conns:
            prev = old.get(key)
            since = prev[1] if prev is not None and prev[0] == activity else now
            head_since = prev[3] if prev is not None and prev[2] == heads >= 0 else now
            if idle and now - since >= idle:
                idle_keys.append(key)
            elif head and heads >= 0 and now - head_since >= head:
                slow.append(key)
            else:
                marks[key] = (activity, since, heads, head_since)
        self._marks = marks
        return idle_keys, slow
