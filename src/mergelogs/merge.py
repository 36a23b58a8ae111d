"""The merge as a chain of generators: parse -> order -> match -> format.

Only the caller touches files: it hands in line iterators and receives output lines,
rejects and statistics. Time enters only through the logs themselves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mergelogs.accesslog import STAMP_LEN, AccessLine, AccessParser, format_stamp, unescape
from mergelogs.order import Orderer, Placed
from mergelogs.penwindow import ClockOffset, PenWindow, normalize_address
from pen.penlog import reduce_request

LOOKAHEAD = 4096
"""Lines held between voting on clock offsets and matching; the first ones calibrate."""
VOTE_EVERY = 16
"""After calibration, one line in this many votes."""


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
    utc: bool = False


@dataclass(slots=True)
class BackendStats:
    """Per-backend figures for the summary."""

    lines: int = 0
    matched: int = 0
    unmatched: int = 0
    unparsable: int = 0
    out_of_order: int = 0
    offset: int = 0


@dataclass(slots=True)
class Reject:
    """A line that kept its original client, and why."""

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

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.backends)

    @property
    def unmatched(self) -> int:
        return sum(b.unmatched for b in self.backends)


def parse_lines(lines: Iterable[bytes]) -> Iterator[AccessLine]:
    """Parse raw lines of one backend log, one parser (and stamp cache) per log."""
    parse = AccessParser().parse
    return map(parse, lines)


def request_key(request: bytes | None) -> bytes | None:
    """A backend line's ``%r`` as pen would have logged it; None if the line has none."""
    if not request or request == b"-":
        return None
    return reduce_request(unescape(request))


class Merger:
    """Merge backend logs and restore clients from pen.log.

    :param backends: the ``server:logfile`` arguments, in order.
    :param logs: one iterator of raw lines per backend.
    :param pen: pen.log lines.
    :param reject: called for every line that keeps its original client.
    :param on_lines: progress, called with the number of lines read.
    """

    def __init__(
        self,
        backends: list[Backend],
        logs: list[Iterable[bytes]],
        pen: Iterable[bytes],
        settings: Settings,
        reject: Callable[[Reject], None] | None = None,
        on_lines: Callable[[int], None] | None = None,
    ) -> None:
        self._servers = [normalize_address(b.address) for b in backends]
        self._settings = settings
        self._orderer = Orderer([parse_lines(log) for log in logs], settings.window, on_lines)
        self._window = PenWindow(pen, settings.jitter, settings.shift)
        self._clocks = [ClockOffset(settings.radius) for _ in backends]
        self._reject = reject
        self._matched = [0] * len(backends)
        self._unmatched = [0] * len(backends)
        self._utc_stamps: dict[int, bytes] = {}

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
            stats.unused,
            stats.unusable,
        )

    def __iter__(self) -> Iterator[bytes]:
        """Yield the output lines in order."""
        pending: deque[tuple[Placed, bytes | None]] = deque()
        window = self._window
        servers, clocks = self._servers, self._clocks
        reach = self._settings.jitter + self._settings.radius
        emit = self._emit
        seen = 0
        for placed in self._orderer:
            line = placed[2]
            epoch = line.epoch
            key = None
            if epoch is not None:
                key = request_key(line.request)
                if key is not None:
                    window.load(epoch + reach)
                    seen += 1
                    if seen <= LOOKAHEAD or not seen % VOTE_EVERY:
                        source = placed[0]
                        window.vote((servers[source], key), epoch, clocks[source])
            pending.append((placed, key))
            if len(pending) > LOOKAHEAD:
                yield emit(*pending.popleft())
        while pending:
            yield emit(*pending.popleft())
        window.close()

    def _emit(self, placed: Placed, key: bytes | None) -> bytes:
        source, _, line = placed
        if line.epoch is None:
            self._rejected(placed, "unparsable")
            return line.raw
        client = None
        if key is not None:
            at = line.epoch + self._clocks[source].offset
            self._window.evict(at - self._settings.jitter - 2 * self._settings.radius)
            client = self._window.take((self._servers[source], key), at)
        if client is None:
            self._rejected(placed, "no request" if key is None else "no pen.log entry")
            raw = line.raw
        else:
            self._matched[source] += 1
            raw = line.with_client(client)
        if self._settings.utc:
            raw = self._to_utc(raw, line, len(raw) - len(line.raw))
        return raw

    def _rejected(self, placed: Placed, reason: str) -> None:
        source, lineno, line = placed
        if line.epoch is not None:
            self._unmatched[source] += 1
        if self._reject is not None:
            self._reject(Reject(source, lineno, reason, line.raw))

    def _to_utc(self, raw: bytes, line: AccessLine, moved: int) -> bytes:
        epoch = line.epoch
        assert epoch is not None
        stamp = self._utc_stamps.get(epoch)
        if stamp is None:
            if len(self._utc_stamps) > 4096:
                self._utc_stamps.clear()
            stamp = self._utc_stamps[epoch] = format_stamp(epoch)
        start = line.stamp_start + moved
        return raw[:start] + stamp + raw[start + STAMP_LEN :]
