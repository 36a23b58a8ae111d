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

Backend clocks are seconds apart from pen's. :class:`ClockOffset` estimates each backend's
offset from votes: a line votes, for every second ``s`` within ``radius``, with the share of
its candidates found ``s`` seconds from it. Lines of rare requests put their whole vote on
the true offset; popular ones spread theirs thinly, so the peak stands out either way.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pen.penlog import split_line

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


def usable_client(client: bytes) -> bool:
    """False for clients that cannot stand as a log's first field (Unix peers, errors)."""
    return bool(client) and 32 not in client and 9 not in client


@dataclass(slots=True)
class WindowStats:
    """What the window saw of pen.log."""

    entries: int = 0
    unusable: int = 0
    unused: int = 0


class _KeyIndex:
    """The entries of one (server, request), sorted by second.

    ``seconds`` keeps every loaded entry (votes count them all, used or not); ``live`` and
    ``clients`` are the unused ones. Plain lists: a busy URL's entries are used close to the
    middle, where deleting moves a few hundred pointers, and a rare URL costs three tiny lists.
    """

    __slots__ = ("seconds", "live", "clients")

    def __init__(self) -> None:
        self.seconds: list[int] = []
        self.live: list[int] = []
        self.clients: list[bytes] = []

    def add(self, second: int, client: bytes) -> None:
        """Add an entry after those of the same second (pen.log is nearly sorted)."""
        live = self.live
        if not live or live[-1] <= second:
            live.append(second)
            self.clients.append(client)
        else:
            at = bisect.bisect_right(live, second)
            live.insert(at, second)
            self.clients.insert(at, client)
        seconds = self.seconds
        if not seconds or seconds[-1] <= second:
            seconds.append(second)
        else:
            bisect.insort(seconds, second)

    def take_nearest(self, at: int, jitter: int) -> bytes | None:
        """Use the nearest unused entry within ``jitter`` of ``at``; earlier wins a tie."""
        live = self.live
        pos = bisect.bisect_left(live, at)
        after = live[pos] - at if pos < len(live) else jitter + 1
        before = at - live[pos - 1] if pos else jitter + 1
        if before <= after:
            if before > jitter:
                return None
            pos = bisect.bisect_left(live, live[pos - 1], 0, pos)
        elif after > jitter:
            return None
        del live[pos]
        return self.clients.pop(pos)

    def vote(self, at: int, radius: int, tally: list[float]) -> None:
        """Share one vote among the entries within ``radius`` of ``at``."""
        seconds = self.seconds
        lo = bisect.bisect_left(seconds, at - radius)
        hi = bisect.bisect_right(seconds, at + radius, lo)
        if lo == hi:
            return
        weight = 1.0 / (hi - lo)
        base = radius - at
        for second in seconds[lo:hi]:
            tally[second + base] += weight

    def drop(self, before: int) -> int:
        """Forget entries older than ``before``; returns how many were never used."""
        del self.seconds[: bisect.bisect_left(self.seconds, before)]
        unused = bisect.bisect_left(self.live, before)
        if unused:
            del self.live[:unused]
            del self.clients[:unused]
        return unused


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

    :param lines: pen.log lines in file order (nearly sorted by epoch).
    :param jitter: the widest distance in seconds between a line and its entry.
    :param shift: seconds subtracted from pen epochs first (``-t``).
    """

    def __init__(self, lines: Iterable[bytes], jitter: int, shift: int = 0) -> None:
        self.stats = WindowStats()
        self._lines = iter(lines)
        self._jitter = jitter
        self._shift = shift
        self._index: dict[Key, _KeyIndex] = {}
        self._loaded: deque[tuple[int, Key]] = deque()
        self._loaded_to: int | None = None
        self._evicted_to: int | None = None

    def load(self, upto: int) -> None:
        """Read pen.log until an entry newer than ``upto`` has been seen (or the end)."""
        if self._loaded_to is not None and self._loaded_to > upto:
            return
        stats = self.stats
        index_of = self._index
        loaded = self._loaded.append
        for line in self._lines:
            fields = split_line(line)
            stats.entries += 1
            if fields is None or not usable_client(fields[0]):
                stats.unusable += 1
                continue
            client, epoch, server, request = fields
            epoch -= self._shift
            key = (normalize_address(server), request)
            index = index_of.get(key)
            if index is None:
                index = index_of[key] = _KeyIndex()
            index.add(epoch, client)
            loaded((epoch, key))
            if self._loaded_to is None or epoch > self._loaded_to:
                self._loaded_to = epoch
                if epoch > upto:
                    return
        self._loaded_to = 2**63

    def evict(self, before: int) -> None:
        """Forget entries older than ``before``; unused ones are counted."""
        if self._evicted_to is not None and before <= self._evicted_to:
            return
        self._evicted_to = before
        loaded = self._loaded
        while loaded and loaded[0][0] < before:
            key = loaded.popleft()[1]
            index = self._index.get(key)
            if index is not None:
                self.stats.unused += index.drop(before)
                if not index.seconds:
                    del self._index[key]

    def take(self, key: Key, at: int) -> bytes | None:
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
