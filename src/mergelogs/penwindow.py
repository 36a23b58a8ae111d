"""Which pen.log entry a backend line belongs to: a pure, streaming, one-to-one matcher.

Design notes
------------
Candidates for a backend line are the unused pen.log entries with the same backend address
and the same request as pen logs it (:func:`pen.penlog.reduce_request` of the unescaped
``%r``), within ``jitter`` seconds of the line's instant on pen's clock. The nearest wins,
ties first-in first-out, and a used entry is gone (C mergelogs reuses entries).

Entries live in a window: loaded from pen.log up to the newest line's time plus jitter,
dropped once older than the oldest line's time minus jitter. They are indexed by
(server, request) and kept sorted by second, so a lookup is a dict hit and a bisect however
popular the URL.

Backend clocks are seconds apart from pen's: the window casts the votes and counts the
entries that :mod:`mergelogs.clock` turns into each backend's offset.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

from mergelogs.clock import ClockOffset
from pen.penlog import split_line

_BUSY = 32
"""Seconds with entries within the vote radius beyond which a request does not vote."""
SLACK = 30
"""Seconds an entry may outlive the window before it is dropped (see PenWindow.evict)."""

END = 2**63
"""Later than any epoch."""

Key = tuple[str, bytes]
"""(normalised backend address, request as pen logs it)."""


@lru_cache(maxsize=1024)
def normalize_address(text: str | bytes) -> str:
    """One spelling per address, so ``10.0.0.1`` and ``::ffff:...`` forms compare as pen's."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text.lower()
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


@dataclass(slots=True)
class WindowStats:
    """What the window saw of pen.log."""

    entries: int = 0
    unusable: int = 0
    unused: int = 0


class _KeyIndex:
    """The entries of one (server, request), by second.

    ``slots`` maps a second to ``[entries loaded, unused client, ...]``: votes count every
    entry, matching takes the unused ones first in, first out. ``seconds`` and ``live`` are
    the sorted seconds with entries and with unused entries. Keeping them per second, not
    per entry, bounds every list operation by the seconds in the window, however busy the
    URL (a per-entry list costs a long memmove for each use at 1,000 req/s).
    """

    __slots__ = ("seconds", "live", "slots")

    def __init__(self) -> None:
        self.seconds: list[int] = []
        self.live: list[int] = []
        self.slots: dict[int, list[int | bytes]] = {}

    def add(self, second: int, client: bytes) -> bool:
        """Add an entry (pen.log is nearly sorted); True when it opens a new latest second."""
        slot = self.slots.get(second)
        if slot is None:
            self.slots[second] = [1, client]
            newest = _insert(self.seconds, second)
            _insert(self.live, second)
            return newest
        if len(slot) == 1:
            _insert(self.live, second)
        slot[0] += 1  # type: ignore[operator]
        slot.append(client)
        return False

    def take(self, first: int, last: int, at: float, jitter: int) -> bytes | None:
        """Use the entry for a line whose instant on pen's clock is ``at``.

        pen and the backend stamp whole seconds on clocks a fraction apart, so the line's own
        entry lies in a second from ``first`` to ``last``, less than a second (plus a little
        latency) from ``at``. Every entry there is equally good, and the first one in wins:
        taking the earliest candidate of each line in turn keeps a popular URL's entries in
        step with its lines. Failing that, the nearest within ``jitter`` (earlier on a tie).
        """
        live = self.live
        pos = bisect.bisect_left(live, first)
        if pos == len(live) or live[pos] > last:
            after = live[pos] - at if pos < len(live) else jitter + 1
            before = at - live[pos - 1] if pos else jitter + 1
            if before <= after:
                pos -= 1
            if min(before, after) > jitter:
                return None
        slot = self.slots[live[pos]]
        client = slot.pop(1)
        if len(slot) == 1:
            del live[pos]
        return client  # type: ignore[return-value]

    def vote(self, at: int, radius: int, tally: list[float]) -> None:
        """Share one vote among the entries within ``radius`` of ``at``.

        A request seen in most seconds around ``at`` says next to nothing about the offset
        and costs a loop over them all: it does not vote.
        """
        seconds = self.seconds
        lo = bisect.bisect_left(seconds, at - radius)
        hi = bisect.bisect_right(seconds, at + radius, lo)
        if lo == hi or hi - lo > _BUSY:
            return
        slots = self.slots
        near = [(second, slots[second][0]) for second in seconds[lo:hi]]
        weight = 1.0 / sum(count for _, count in near)  # type: ignore[misc]
        base = radius - at
        for second, count in near:
            tally[second + base] += count * weight

    def unused(self) -> int:
        """How many entries were never used."""
        return sum(len(slot) - 1 for slot in self.slots.values())

    def drop(self, before: int) -> int:
        """Forget entries older than ``before``; returns how many were never used."""
        seconds = self.seconds
        old = bisect.bisect_left(seconds, before)
        unused = 0
        for second in seconds[:old]:
            unused += len(self.slots.pop(second)) - 1
        del seconds[:old]
        del self.live[: bisect.bisect_left(self.live, before)]
        return unused


def _insert(seconds: list[int], second: int) -> bool:
    """Put ``second`` into a sorted list of distinct seconds; True when it is the newest."""
    if not seconds or seconds[-1] < second:
        seconds.append(second)
        return True
    at = bisect.bisect_left(seconds, second)
    if at == len(seconds) or seconds[at] != second:
        seconds.insert(at, second)
    return False


class PenWindow:
    """pen.log entries around the lines being matched, indexed for one-to-one matching.

    :param lines: pen.log lines in file order (nearly sorted by epoch).
    :param jitter: the widest distance in seconds between a line and its entry.
    :param shift: seconds subtracted from pen epochs first (``-t``).
    :param servers: the (normalised) backend addresses whose entries are kept; entries for
        other servers can match no line and count as unused at once. None keeps all.
    """

    def __init__(self, lines: Iterable[bytes], jitter: int, shift: int = 0,
                 servers: Collection[str] | None = None) -> None:
        self.stats = WindowStats()
        self._wanted = servers
        self._lines = iter(lines)
        self._jitter = jitter
        self._shift = shift
        self._index: dict[Key, _KeyIndex] = {}
        self._loaded: deque[tuple[int, Key]] = deque()
        """(second, key) each time a key's entries reach a new second: what to evict."""
        self._servers: dict[bytes, str] = {}
        """pen.log's spelling of each server, normalised once ("" for one not kept)."""
        self._loaded_to = -END
        self._evicted_to: int | None = None

    def load(self, upto: int) -> None:
        """Read pen.log until an entry newer than ``upto`` has been seen (or the end)."""
        loaded_to = self._loaded_to
        if loaded_to > upto:
            return
        index_of = self._index
        servers = self._servers
        loaded = self._loaded.append
        shift = self._shift
        entries = unusable = unused = 0
        for line in self._lines:
            entries += 1
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[1].isdigit() and parts[2] and parts[0] \
                    and 9 not in parts[0]:
                client, stamp, server, request = parts
                if request[-1:] == b"\n":
                    request = request[:-1]
            else:
                fields = split_line(line)
                if fields is None or not fields[0] or 32 in fields[0] or 9 in fields[0]:
                    unusable += 1  # not a pen.log line, a Unix peer, or an error text
                    continue
                client, stamp, server, request = fields  # type: ignore[assignment]
            name = servers.get(server)
            if name is None:
                name = servers[server] = self._kept(server)
            if not name:
                unused += 1
                continue
            epoch = int(stamp) - shift
            key = (name, request)
            index = index_of.get(key)
            if index is None:
                index = index_of[key] = _KeyIndex()
            if index.add(epoch, client):
                loaded((epoch, key))
            if epoch > loaded_to:
                loaded_to = epoch
                if epoch > upto:
                    break
        else:
            loaded_to = END
        self._loaded_to = loaded_to
        self.stats.entries += entries
        self.stats.unusable += unusable
        self.stats.unused += unused

    def _kept(self, server: bytes) -> str:
        """The normalised name of a pen.log server field, "" if its entries are not kept."""
        name = normalize_address(server)
        return name if self._wanted is None or name in self._wanted else ""

    def evict(self, before: int) -> None:
        """Forget entries older than ``before`` (by ``SLACK`` seconds at a time); unused ones
        are counted.

        A popular request reaches a new second every second; dropping its old seconds in
        strides of ``SLACK`` instead of one by one costs a bisect per stride, not per second.
        Entries kept a little longer change nothing: no line takes or votes for an entry that
        far from it.
        """
        if self._evicted_to is not None and before <= self._evicted_to:
            return
        self._evicted_to = before
        loaded = self._loaded
        index_of = self._index
        stale = before - SLACK
        unused = 0
        while loaded and loaded[0][0] < before:
            key = loaded.popleft()[1]
            index = index_of.get(key)
            if index is None:
                continue
            seconds = index.seconds
            if seconds[-1] < before:  # all of it is old: most requests are rare
                unused += index.unused()
                del index_of[key]
            elif seconds[0] < stale:
                unused += index.drop(before)
        self.stats.unused += unused

    def take(self, key: Key, epoch: int, clock: ClockOffset) -> bytes | None:
        """The client of the unused entry for ``key`` that best fits a line at ``epoch``."""
        index = self._index.get(key)
        if index is None:
            return None
        return index.take(epoch + clock.first, epoch + clock.last, epoch + clock.offset,
                          self._jitter)

    def vote(self, key: Key, at: int, clock: ClockOffset) -> None:
        """Let a line whose uncorrected pen time is ``at`` vote on its backend's offset."""
        index = self._index.get(key)
        if index is not None:
            index.vote(at, clock.radius, clock.tally)
        clock.counted(at)

    def entry_counts(self, server: str, requests: Iterable[bytes], first: int,
                     last: int) -> dict[int, int]:
        """Entries per second from ``first`` to ``last`` for ``server`` and ``requests``, used
        or not."""
        counts: dict[int, int] = {}
        index_of = self._index
        for request in requests:
            index = index_of.get((server, request))
            if index is None:
                continue
            seconds, slots = index.seconds, index.slots
            lo = bisect.bisect_left(seconds, first)
            for second in seconds[lo : bisect.bisect_right(seconds, last, lo)]:
                counts[second] = counts.get(second, 0) + slots[second][0]  # type: ignore[operator]
        return counts

    def close(self) -> None:
        """Count the entries still unused at the end as unused."""
        self.evict(END)
