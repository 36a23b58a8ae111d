"""Which pen.log entry a backend line belongs to: a pure, streaming, one-to-one matcher.

Design notes
------------
Candidates for a backend line are the unused pen.log entries with the same backend address
and the same request as pen logs it (:func:`pen.penlog.reduce_request` of the unescaped
``%r``), within ``jitter`` seconds of the line's instant on pen's clock. The nearest wins,
ties first-in first-out, and a used entry is gone (C mergelogs reuses entries).

Entries live in a window: loaded from pen.log up to the newest line's time plus jitter,
dropped once older than the oldest line's time minus jitter. They are indexed by
(server, request) and, inside that, by whole second, so a lookup is a dict hit and a bisect
however popular the URL.

Backend clocks are seconds apart from pen's. :class:`ClockOffset` estimates each backend's
offset from votes: a line votes, for every second ``s`` within ``radius``, with the share of
its candidates found ``s`` seconds from it. Lines of rare requests put their whole vote on
the true offset; popular ones spread theirs thinly, so the peak stands out either way.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from pen.penlog import PenRecord

Key = tuple[str, bytes]
"""(normalised backend address, request as pen logs it)."""


@lru_cache(maxsize=1024)
def normalize_address(text: str) -> str:
    """One spelling per address, so ``10.0.0.1`` and ``::ffff:...`` forms compare as pen's."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text.lower()
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def usable_client(client: str) -> bool:
    """False for clients that cannot stand as a log's first field (Unix peers, errors)."""
    return bool(client) and " " not in client and "\t" not in client


@dataclass(slots=True)
class WindowStats:
    """What the window saw of pen.log."""

    entries: int = 0
    unusable: int = 0
    unused: int = 0


class _KeyIndex:
    """The entries of one (server, request): per second, the clients not yet used."""

    __slots__ = ("seconds", "live", "totals", "clients")

    def __init__(self) -> None:
        self.seconds: list[int] = []
        self.live: list[int] = []
        self.totals: dict[int, int] = {}
        self.clients: dict[int, deque[str]] = {}

    def add(self, second: int, client: str) -> bool:
        """Add an entry; True when it opens a new second."""
        queue = self.clients.get(second)
        opened = queue is None
        if queue is None:
            queue = self.clients[second] = deque()
            self.totals[second] = 0
            bisect.insort(self.seconds, second)
        if not queue:
            bisect.insort(self.live, second)
        queue.append(client)
        self.totals[second] += 1
        return opened

    def take_nearest(self, at: int, jitter: int) -> str | None:
        """Use the nearest unused entry within ``jitter`` of ``at``; earlier wins a tie."""
        live = self.live
        pos = bisect.bisect_left(live, at)
        best = -1
        if pos < len(live) and live[pos] - at <= jitter:
            best = pos
        if (
            pos > 0
            and at - live[pos - 1] <= jitter
            and (best < 0 or at - live[pos - 1] <= live[pos] - at)
        ):
            best = pos - 1
        if best < 0:
            return None
        second = live[best]
        queue = self.clients[second]
        client = queue.popleft()
        if not queue:
            del live[best]
        return client

    def vote(self, at: int, radius: int, tally: list[float]) -> None:
        """Share one vote among the seconds within ``radius`` of ``at`` by entry count."""
        seconds = self.seconds
        lo = bisect.bisect_left(seconds, at - radius)
        hi = bisect.bisect_right(seconds, at + radius)
        if lo == hi:
            return
        near = seconds[lo:hi]
        totals = self.totals
        weight = 1.0 / sum(totals[s] for s in near)
        for second in near:
            tally[second - at + radius] += totals[second] * weight

    def drop(self, second: int) -> int:
        """Forget one second; returns how many of its entries were never used."""
        queue = self.clients.pop(second, None)
        if queue is None:
            return 0
        del self.totals[second]
        self.seconds.remove(second)
        if queue:
            self.live.remove(second)
        return len(queue)


class ClockOffset:
    """A backend's clock offset from pen's, as the peak of decaying votes."""

    __slots__ = ("radius", "tally", "votes", "offset")

    DECAY_EVERY = 2048

    def __init__(self, radius: int) -> None:
        self.radius = radius
        self.tally = [0.0] * (2 * radius + 1)
        self.votes = 0
        self.offset = 0

    def counted(self) -> None:
        """Note one more vote; refresh the estimate now and then, and age old votes."""
        self.votes += 1
        if self.votes % 64 == 0:
            peak = max(range(len(self.tally)), key=self.tally.__getitem__)
            if self.tally[peak] > 0:
                self.offset = peak - self.radius
        if self.votes % self.DECAY_EVERY == 0:
            self.tally[:] = [v / 2 for v in self.tally]


class PenWindow:
    """pen.log entries around the lines being matched, indexed for one-to-one matching.

    :param records: pen.log records in file order (nearly sorted by epoch).
    :param jitter: the widest distance in seconds between a line and its entry.
    :param shift: seconds subtracted from pen epochs first (``-t``).
    """

    def __init__(self, records: Iterator[PenRecord], jitter: int, shift: int = 0) -> None:
        self.stats = WindowStats()
        self._records = records
        self._jitter = jitter
        self._shift = shift
        self._index: dict[Key, _KeyIndex] = {}
        self._opened: deque[tuple[int, Key]] = deque()
        self._loaded_to: int | None = None
        self._exhausted = False

    def load(self, upto: int) -> None:
        """Read pen.log until an entry newer than ``upto`` has been seen (or the end)."""
        if self._exhausted or (self._loaded_to is not None and self._loaded_to > upto):
            return
        stats = self.stats
        for record in self._records:
            epoch = record.epoch - self._shift
            stats.entries += 1
            if not usable_client(record.client):
                stats.unusable += 1
                continue
            key = (normalize_address(record.server), record.request)
            index = self._index.get(key)
            if index is None:
                index = self._index[key] = _KeyIndex()
            if index.add(epoch, record.client):
                self._opened.append((epoch, key))
            if self._loaded_to is None or epoch > self._loaded_to:
                self._loaded_to = epoch
            if epoch > upto:
                return
        self._exhausted = True

    def evict(self, before: int) -> None:
        """Forget entries older than ``before``; unused ones are counted."""
        opened = self._opened
        while opened and opened[0][0] < before:
            second, key = opened.popleft()
            index = self._index[key]
            self.stats.unused += index.drop(second)
            if not index.clients:
                del self._index[key]

    def take(self, key: Key, at: int) -> str | None:
        """The client of the nearest unused entry for ``key`` around pen time ``at``."""
        index = self._index.get(key)
        if index is None:
            return None
        return index.take_nearest(at, self._jitter)

    def vote(self, key: Key, at: int, clock: ClockOffset) -> None:
        """Let a line whose uncorrected pen time is ``at`` vote on its backend's offset."""
        index = self._index.get(key)
        if index is not None:
            index.vote(at, clock.radius, clock.tally)
            clock.counted()

    def close(self) -> None:
        """Count the entries still unused at the end as unused."""
        self.evict(2**63)
