"""The merge as a chain of generators: parse -> order -> match -> format.

Only the caller touches files: it hands in line iterators and receives output lines,
rejects and statistics (a line too long to hold waits in a :class:`~mergelogs.streams.Spool`
file meanwhile). Time enters only through the logs themselves.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mergelogs.accesslog import StampWriter, parse_zone, unescape, with_client, with_stamp
from mergelogs.clock import COUNT_SPAN, ClockOffset
from mergelogs.order import Orderer, Placed
from mergelogs.penwindow import Key, PenWindow, normalize_address
from mergelogs.streams import Spilled, Spool
from pen.penlog import reduce_request

ORIGIN = 1_800_000_000
"""The epoch a merge counts its seconds from (2027-01-15): seconds within 2**30 of it, from
1993 to 2061, are small ints on CPython's fast paths; others are only slower."""
LOOKAHEAD = 4096
"""Lines held at least between voting on clock offsets and matching."""
HOLD = 10
"""Seconds of later lines seen at least before a line is matched: a backend whose clock runs
ahead shows its first lines late in the merged order, and they need their votes in first."""
HOLD_UNSETTLED = 120
"""Seconds lines wait at most while a backend's offset is still unknown (see clock.py: a
popular request matched on a wrong offset goes on taking entries from the wrong seconds)."""
CALIBRATION = 512
"""Votes each backend casts with every line before voting with one line in VOTE_EVERY..."""
VOTE_EVERY = 8
FOLLOW = 2048
"""... and after these many votes, with one line a second of log: enough to follow a
drifting clock, at a cost that grows with the log's time span, not its request rate."""
KEYS_MAX = 16384
"""Keys remembered per backend: popular requests are keyed once, not once a line."""
COUNT_REQUESTS_MAX = 4096
"""Distinct requests beyond which a backend's counts are not fitted: counts are for farms of
a few popular requests, and a backend with weak votes and many requests (an address that is
not in pen.log) would cost a lookup per request every few seconds for nothing."""


@dataclass(frozen=True, slots=True)
class Backend:
    """One ``server:logfile`` argument."""

    address: str
    name: str


@dataclass(frozen=True, slots=True)
class Settings:
    """How to merge (the command line's options)."""

    jitter: int = 600
    shift: int = 0
    window: int = 60
    radius: int = 60
    zone: str | None = None
    """The zone every time is written in (see zones.py); None keeps each line's text."""


@dataclass(slots=True)
class BackendStats:
    """Per-backend figures for the summary."""

    lines: int = 0
    matched: int = 0
    unmatched: int = 0
    unparsable: int = 0
    out_of_order: int = 0
    offset: float = 0.0


PEN_LOG = -1
"""The ``backend`` of a :class:`Reject` that is a pen.log entry set aside."""


@dataclass(slots=True)
class Reject:
    """A line that kept its original client (or a pen.log entry set aside), and why."""

    backend: int
    lineno: int
    reason: str
    raw: bytes


@dataclass(slots=True)
class Result:
    """Figures of a finished (or running) merge."""

    backends: list[BackendStats] = field(default_factory=list)
    pen_entries: int = 0
    pen_unused: int = 0
    pen_unusable: int = 0
    pen_outliers: int = 0
    """pen.log entries set aside: their time was far from their neighbours'."""
    pen_steps: int = 0
    """Steps of pen's clock followed."""

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.backends)

    @property
    def unmatched(self) -> int:
        return sum(b.unmatched for b in self.backends)


def request_key(request: bytes) -> bytes:
    """A backend line's ``%r`` (not empty, not ``-``) as pen would have logged it."""
    return reduce_request(unescape(request) if 92 in request else request)


class Merger:
    """Merge backend logs and restore clients from pen.log.

    :param backends: the ``server:logfile`` arguments, in order.
    :param logs: one iterator of raw lines per backend.
    :param pen: pen.log lines.
    :param reject: called for every line that keeps its original client.
    :param on_lines: progress, called with the number of lines read.
    :param spool: where lines too long to hold wait for output (one is made on the first
        such line if not given).
    """

    def __init__(
        self,
        backends: list[Backend],
        logs: list[Iterable[bytes]],
        pen: Iterable[bytes],
        settings: Settings,
        reject: Callable[[Reject], None] | None = None,
        on_lines: Callable[[int], None] | None = None,
        spool: Spool | None = None,
    ) -> None:
        self._servers = [normalize_address(b.address) for b in backends]
        self._settings = settings
        self._spool = spool
        self._own_spool = spool is None
        self._spilled = False
        """Whether the second being matched holds a spilled line."""
        self._orderer = Orderer(logs, settings.window, on_lines, ORIGIN, self._spill)
        self._window = PenWindow(pen, settings.jitter, settings.shift + ORIGIN,
                                 set(self._servers), 2 * settings.radius)
        self._clocks = [ClockOffset(settings.radius) for _ in backends]
        self._reject = reject
        self._matched = [0] * len(backends)
        self._unmatched = [0] * len(backends)
        self._stamps = None if settings.zone is None else StampWriter(parse_zone(settings.zone),
                                                                      ORIGIN)
        self._seen = [0] * len(backends)
        """Lines with a request per backend, for VOTE_EVERY."""
        self._voted: list[int | None] = [None] * len(backends)
        """The second of each backend's last vote."""
        self._keys: list[dict[bytes, Key]] = [{} for _ in backends]
        """Per backend, the key of each request as logged."""

    def result(self) -> Result:
        """The figures so far (final once the output is exhausted)."""
        stats = self._window.stats
        return Result(
            [
                BackendStats(
                    s.lines,
                    self._matched[i],
                    self._unmatched[i],
                    s.unparsable,
                    s.out_of_order,
                    self._clocks[i].offset,
                )
                for i, s in enumerate(self._orderer.stats)
            ],
            stats.entries,
            stats.entries - stats.unusable - sum(self._matched) - self._window.clock.outliers,
            stats.unusable,
            self._window.clock.outliers,
            self._window.clock.steps,
        )

    def __iter__(self) -> Iterator[bytes]:
        """Yield the output lines in order."""
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[bytes]]:
        """Yield the output lines in order, a second's worth at a time (a line too long to
        hold in pieces of its own)."""
        for _, _, out in self._seconds():
            if self._spilled:
                self._spilled = False
                yield from self._spool.expand(out)  # type: ignore[union-attr]
            else:
                yield out
        self._close_spool()

    def _spill(self, first: bytes, rest: Iterator[bytes]) -> bytes:
        """Set aside a line too long to hold (see Orderer)."""
        if self._spool is None:
            self._spool = Spool()
        return self._spool.put(first, rest)

    def _close_spool(self) -> None:
        if self._own_spool and self._spool is not None:
            self._spool.close()
            self._spool = None

    def groups(self) -> Iterator[tuple[int, list[tuple[int, bytes | tuple[bytes, ...]]]]]:
        """Yield each second's output as (backend, its lines joined), in argument order:
        what a parent needs to interleave this merge with others of other backends. A
        backend's lines that hold a spilled line come as a tuple of lines instead, for the
        parent to expand from the spool it shares."""
        for second, lines, out in self._seconds():
            groups: list[tuple[int, bytes | tuple[bytes, ...]]] = []
            spilled, self._spilled = self._spilled, False
            start = 0
            while start < len(lines):  # lines are sorted by backend: find where each ends
                source = lines[start][0]
                end = bisect.bisect_left(lines, (source + 1,), start)
                if spilled and any(type(line) is Spilled for line in out[start:end]):
                    groups.append((source, tuple(out[start:end])))
                else:
                    groups.append((source, b"".join(out[start:end])))
                start = end
            yield second, groups
        self._close_spool()

    def _seconds(self) -> Iterator[tuple[int, list[Placed], list[bytes]]]:
        """Each second, its lines and their output, in order.

        Each second's lines vote on their backends' clock offsets on the way in and are
        matched on the way out, at least LOOKAHEAD lines and HOLD seconds later.
        """
        pending: deque[tuple[int, list[Placed], list[Key | None]]] = deque()
        held = 0
        for second, lines in self._orderer:
            pending.append((second, lines, self._enter(second, lines)))
            held += len(lines)
            while (held - len(pending[0][1]) >= LOOKAHEAD and second - pending[0][0] >= HOLD
                   and (second - pending[0][0] >= HOLD_UNSETTLED or self._settled())
                   and not self._window.clock.holding):  # a pause or a step of pen's clock?
                first, lines, keys = pending.popleft()
                held -= len(lines)
                yield first, lines, self._match(first, lines, keys)
        self._window.finish()
        self._set_aside()
        while pending:
            first, lines, keys = pending.popleft()
            yield first, lines, self._match(first, lines, keys)
        self._window.close()

    def _settled(self) -> bool:
        """True when every backend that has voted has its offset placed."""
        return all(clock.settled or not clock.votes for clock in self._clocks)

    def _enter(self, second: int, lines: list[Placed]) -> list[Key | None]:
        """Find each line's key, load pen.log ahead of the second and let the lines vote.

        No line of a second's bucket is later than the second (late lines join a later
        bucket), so one load covers them all.
        """
        window, servers, clocks = self._window, self._servers, self._clocks
        window.load(second + self._settings.jitter + self._settings.radius, second)
        self._set_aside()
        observe = window.clock.observe if window.clock.holding else None
        vote = window.vote
        seen, voted = self._seen, self._voted
        known = self._keys
        keys: list[Key | None] = []
        for source, _, _, epoch, _, request in lines:
            if epoch is None or not request or request == b"-":
                keys.append(None)
                continue
            key = known[source].get(request)
            if key is None:
                if len(known[source]) >= KEYS_MAX:
                    known[source].clear()
                key = known[source][request] = (servers[source], request_key(request))
            keys.append(key)
            if observe is not None:
                observe(key, epoch)
            clock = clocks[source]
            votes = clock.votes
            if votes < FOLLOW:
                seen[source] += 1
                if votes < CALIBRATION or not seen[source] % VOTE_EVERY:
                    vote(key, epoch, clock)
            elif voted[source] != second:
                voted[source] = second
                vote(key, epoch, clock)
            if clock.weak:
                counts = clock.lines
                counts[epoch] = counts.get(epoch, 0) + 1
                clock.requests[key[1]] = epoch
        radius = self._settings.radius
        for source, clock in enumerate(clocks):
            if not clock.count_due(second):
                continue
            clock.forget(second - COUNT_SPAN)
            if len(clock.requests) <= COUNT_REQUESTS_MAX:
                entries = window.entry_counts(servers[source], clock.requests,
                                              second - COUNT_SPAN - radius, second + radius)
                clock.from_counts(entries, second)
        return keys

    def _match(self, second: int, lines: list[Placed], keys: list[Key | None]) -> list[bytes]:
        """The output lines of one second: clients restored where pen.log has them."""
        window, clocks = self._window, self._clocks
        window.evict(second - self._settings.jitter - 2 * self._settings.radius)
        take = window.take
        matched = self._matched
        stamp = None if self._stamps is None else self._stamps.stamp
        out = []
        for placed, key in zip(lines, keys, strict=True):
            source, _, raw, epoch, start, _ = placed
            client = None
            if key is not None:  # then epoch is not None either
                client = take(key, epoch, clocks[source])  # type: ignore[arg-type]
            if client is None:
                if type(raw) is Spilled:
                    self._spilled = True
                self._rejected(placed, "longer than a line can be held" if type(raw) is Spilled
                               else "unparsable" if epoch is None
                               else "no request" if key is None else "no pen.log entry")
                if stamp is None or epoch is None:
                    out.append(raw)
                else:
                    out.append(with_stamp(raw, start, stamp(epoch)))
            else:
                matched[source] += 1
                if stamp is None:
                    out.append(with_client(raw, client))
                else:  # client and %t's text in one copy of the line
                    out.append(with_stamp(raw, start, stamp(epoch), client))  # type: ignore[arg-type]
        return out

    def _set_aside(self) -> None:
        """Report the pen.log entries set aside as far from their neighbours' time."""
        clock = self._window.clock
        if clock.set_aside and self._reject is not None:
            for lineno, _, _, _, line in clock.set_aside:
                self._reject(Reject(PEN_LOG, lineno, "time far from its neighbours'", line))
        clock.set_aside.clear()

    def _rejected(self, placed: Placed, reason: str) -> None:
        source, lineno, raw, epoch, _, _ = placed
        if epoch is not None:
            self._unmatched[source] += 1
        if self._reject is not None:
            self._reject(Reject(source, lineno, reason, raw))
