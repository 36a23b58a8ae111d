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
popular the URL. The index is cut into generations of a quarter of the jitter on pen's clock,
and a generation is dropped whole once all of it is too old: eviction costs nothing per entry.

Backend clocks are seconds apart from pen's: the window casts the votes and counts the
entries that :mod:`mergelogs.clock` turns into each backend's offset.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import sys
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from mergelogs.clock import ClockOffset
from pen.penlog import split_line

_BUSY = 32
"""Seconds with entries within the vote radius beyond which a request does not vote."""
GENERATIONS = 4
"""Generations of the index per jitter: a dropped generation is at most a quarter of the
window late, so memory stays within 1.25 windows (see PenWindow.evict)."""
GENERATION_MIN = 8
"""Seconds of pen's clock per generation at the least."""

END = 2**63
"""Later than any epoch."""

Key = tuple[str, bytes]
"""(normalised backend address, request as pen logs it)."""


@lru_cache(maxsize=1024)
def normalize_address(text: str | bytes) -> str:
    """One spelling per address, so ``10.0.0.1`` and ``::ffff:...`` forms compare as pen's
    (interned: keys built from pen.log and from the command line then compare by identity)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return sys.intern(text.lower())
    mapped = getattr(address, "ipv4_mapped", None)
    return sys.intern(str(mapped or address))


@dataclass(slots=True)
class WindowStats:
    """What the window saw of pen.log."""

    entries: int = 0
    unusable: int = 0


class _KeyIndex:
    """The entries of one (server, request), by second.

    ``slots`` maps a second to ``[entries loaded, unused client, ...]``: votes count every
    entry, matching takes the unused ones first in, first out. ``seconds`` and ``live`` are
    the sorted seconds with entries and with unused entries. Keeping them per second, not
    per entry, bounds every list operation by the seconds in the window, however busy the
    URL (a per-entry list costs a long memmove for each use at 1,000 req/s).
    """

    __slots__ = ("seconds", "live", "slots")

    def __init__(self, second: int, client: bytes) -> None:
        self.seconds = [second]
        self.live = [second]
        self.slots: dict[int, list[int | bytes]] = {second: [1, client]}

    def take(self, pos: int) -> bytes:
        """Use the first unused entry of the live second at ``pos``."""
        live = self.live
        slot = self.slots[live[pos]]
        client = slot.pop(1)
        if len(slot) == 1:
            del live[pos]
        return client  # type: ignore[return-value]

    def near(self, first: int, last: int) -> list[int]:
        """The seconds with entries from ``first`` to ``last``."""
        seconds = self.seconds
        lo = bisect.bisect_left(seconds, first)
        return seconds[lo : bisect.bisect_right(seconds, last, lo)]


_EMPTY: dict[Key, _KeyIndex] = {}
"""What a generation that is not loaded holds (never written to)."""


def _insert(seconds: list[int], second: int) -> None:
    """Put ``second`` into a sorted list of distinct seconds (most often at the end)."""
    if not seconds or seconds[-1] < second:
        seconds.append(second)
        return
    at = bisect.bisect_left(seconds, second)
    if at == len(seconds) or seconds[at] != second:
        seconds.insert(at, second)


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
        self._span = max(jitter // GENERATIONS, GENERATION_MIN)
        self._generations: dict[int, dict[Key, _KeyIndex]] = {}
        """Generation number (second // span) -> its index."""
        self._servers: dict[bytes, str] = {}
        """pen.log's spelling of each server, normalised once ("" for one not kept)."""
        self._loaded_to = -END

    def load(self, upto: int) -> None:
        """Read pen.log until an entry newer than ``upto`` has been seen (or the end)."""
        loaded_to = self._loaded_to
        if loaded_to > upto:
            return
        generations = self._generations
        servers = self._servers
        shift = self._shift
        span = self._span
        generation: int | None = None
        index_of: dict[Key, _KeyIndex] = {}
        last_stamp: bytes | None = None
        epoch = 0
        entries = unusable = 0
        for line in self._lines:
            entries += 1
            try:
                client, stamp, server, request = line.split(b" ", 3)
            except ValueError:
                stamp = b""
            if (stamp == last_stamp or stamp.isdigit()) and server and client \
                    and 9 not in client:
                name = servers.get(server)
                if name is None:
                    name = servers[server] = self._kept(server)
                if not name:
                    continue
                if request[-1:] == b"\n":
                    request = request[:-1]
                if stamp != last_stamp:  # most lines share their second with the one before
                    last_stamp, epoch = stamp, int(stamp) - shift
            else:
                fields = split_line(line)
                if fields is None or not fields[0] or 32 in fields[0] or 9 in fields[0]:
                    unusable += 1  # not a pen.log line, a Unix peer, or an error text
                    continue
                client, second, server, request = fields
                name = servers.get(server) or self._kept(server)
                if not name:
                    continue
                last_stamp, epoch = None, second - shift
            if epoch // span != generation:
                generation = epoch // span
                index_of = generations.setdefault(generation, {})
            key = (name, request)
            index = index_of.get(key)
            if index is None:
                index_of[key] = _KeyIndex(epoch, client)
            else:
                slots = index.slots
                slot = slots.get(epoch)
                if slot is None:
                    slots[epoch] = [1, client]
                    seconds, live = index.seconds, index.live
                    if seconds[-1] < epoch:  # the common case: the key's newest second
                        seconds.append(epoch)
                    else:
                        _insert(seconds, epoch)
                    if live and live[-1] >= epoch:
                        _insert(live, epoch)
                    else:
                        live.append(epoch)
                else:
                    if len(slot) == 1:  # all used: live again
                        _insert(index.live, epoch)
                    slot[0] += 1  # type: ignore[operator]
                    slot.append(client)
            if epoch > loaded_to:
                loaded_to = epoch
                if epoch > upto:
                    break
        else:
            loaded_to = END
        self._loaded_to = loaded_to
        self.stats.entries += entries
        self.stats.unusable += unusable

    def add(self, lines: Iterable[bytes]) -> None:
        """Load ``lines`` as they arrive (penlogd): their end is not the end of pen.log, so
        later calls add more."""
        self._lines = iter(lines)
        self._loaded_to = -END
        self.load(END - 1)

    def _kept(self, server: bytes) -> str:
        """The normalised name of a pen.log server field, "" if its entries are not kept."""
        name = normalize_address(server)
        return name if self._wanted is None or name in self._wanted else ""

    def evict(self, before: int) -> None:
        """Forget the generations wholly older than ``before``.

        Entries kept a little longer change nothing: no line takes or votes for an entry
        that far from it.
        """
        generations, span = self._generations, self._span
        for old in [g for g in generations if (g + 1) * span <= before]:
            del generations[old]

    def _indexes(self, key: Key, first: int, last: int, step: int = 1) -> Iterator[_KeyIndex]:
        """The key's index in each generation from the one of second ``first`` to the one of
        ``last``, upwards (or downwards with ``step`` -1)."""
        generations, span = self._generations, self._span
        for generation in range(first // span, last // span + step, step):
            index = generations.get(generation, _EMPTY).get(key)
            if index is not None:
                yield index

    def take(self, key: Key, epoch: int, clock: ClockOffset) -> bytes | None:
        """The client of the unused entry for ``key`` that best fits a line at ``epoch``.

        pen and the backend stamp whole seconds on clocks a fraction apart, so the line's own
        entry lies in a second from ``first`` to ``last`` (its own second plus the clock's
        bounds), less than a second (plus a little latency) from its instant on pen's clock.
        Every entry there is equally good, and the first one in wins: taking the earliest
        candidate of each line in turn keeps a popular URL's entries in step with its lines.
        Failing that, the nearest within ``jitter`` (earlier on a tie).
        """
        first = epoch + clock.first
        last = epoch + clock.last
        span = self._span
        index = self._generations.get(first // span, _EMPTY).get(key)
        if index is not None and index.live:
            live = index.live
            second = live[0]
            pos = 0
            if second < first:  # a popular request: its oldest unused entries are too old
                pos = bisect.bisect_left(live, first)
                second = live[pos] if pos < len(live) else END
            if second <= last:  # index.take(pos), inline: this runs once a line
                slot = index.slots[second]
                client = slot.pop(1)
                if len(slot) == 1:
                    del live[pos]
                return client  # type: ignore[return-value]
        if last // span != first // span:
            for index in self._indexes(key, last, last):
                if index.live and index.live[0] <= last:
                    return index.take(0)
        return self._nearest(key, first, epoch + clock.offset)

    def _nearest(self, key: Key, first: int, at: float) -> bytes | None:
        """Take the entry nearest to ``at`` within ``jitter``, none being from ``first`` on
        to the line's last second (earlier on a tie)."""
        jitter = self._jitter
        after: tuple[int, _KeyIndex, int] | None = None
        for index in self._indexes(key, first, math.floor(at + jitter)):
            pos = bisect.bisect_left(index.live, first)
            if pos < len(index.live):
                after = (index.live[pos], index, pos)
                break
        before: tuple[int, _KeyIndex, int] | None = None
        for index in self._indexes(key, first, math.ceil(at - jitter), -1):
            pos = bisect.bisect_left(index.live, first)
            if pos:
                before = (index.live[pos - 1], index, pos - 1)
                break
        later = after[0] - at if after is not None else jitter + 1
        earlier = at - before[0] if before is not None else jitter + 1
        chosen = before if earlier <= later else after
        if chosen is None or min(earlier, later) > jitter:
            return None
        return chosen[1].take(chosen[2])

    def vote(self, key: Key, at: int, clock: ClockOffset) -> None:
        """Let a line whose uncorrected pen time is ``at`` vote on its backend's offset: one
        vote shared among the key's entries within the clock's radius of ``at``.

        A request seen in most seconds around ``at`` says next to nothing about the offset
        and costs a loop over them all: it does not vote.
        """
        radius = clock.radius
        first, last = at - radius, at + radius
        found = [(index, index.near(first, last)) for index in self._indexes(key, first, last)]
        if 0 < sum(len(seconds) for _, seconds in found) <= _BUSY:
            near = [(second, index.slots[second][0]) for index, seconds in found
                    for second in seconds]
            weight = 1.0 / sum(count for _, count in near)  # type: ignore[misc]
            base = radius - at
            tally = clock.tally
            for second, count in near:
                tally[second + base] += count * weight
        clock.counted(at)

    def entry_counts(self, server: str, requests: Iterable[bytes], first: int,
                     last: int) -> dict[int, int]:
        """Entries per second from ``first`` to ``last`` for ``server`` and ``requests``, used
        or not."""
        counts: dict[int, int] = {}
        for request in requests:
            for index in self._indexes((server, request), first, last):
                slots = index.slots
                for second in index.near(first, last):
                    counts[second] = counts.get(second, 0) + slots[second][0]  # type: ignore[operator]
        return counts

    def close(self) -> None:
        """Forget all entries: the merge is over."""
        self.evict(END)
