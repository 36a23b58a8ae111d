"""Put the lines of several nearly-sorted access logs into one order by instant.

Design notes
------------
Apache stamps ``%t`` when a request arrives but writes the line when it ends, so a log is
only *nearly* sorted. Each input is read into buckets of whole seconds; second ``S`` is
released once every unfinished input has shown a stamp later than ``S + window`` (its later
lines are then assumed to be at or after ``S``). The input with the lowest such watermark is
read next, so memory holds about ``window`` seconds of every input, never a whole file.

Within a second, lines keep file order and then argument order (a stable merge). A line
that arrives after its second was released (later than the window) goes out with the next
second and is counted as out of order. A line with no usable stamp takes the stamp of the
line before it in its file (or, at the start of a file, of the first line after it), so it
comes out next to its neighbours. A line too long to hold (it comes in pieces) is
unparsable, and its pieces are handed to ``spill``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mergelogs.accesslog import AccessParser

_CHUNK = 512
_LEADING_MAX = 10_000
_NEVER = -(2**63)
"""A watermark below every stamp: the input has shown none yet."""


@dataclass(slots=True)
class SourceStats:
    """What ordering found in one input."""

    lines: int = 0
    unparsable: int = 0
    out_of_order: int = 0


Placed = tuple[int, int, bytes, int | None, int, bytes | None]
"""A line on its way out: (input index, line number, raw line, then its
:data:`~mergelogs.accesslog.Fields`: epoch, stamp start, request). A plain tuple: one per
line, and nothing else is built for it."""


@dataclass(slots=True)
class _Source:
    lines: Iterator[bytes]
    parser: AccessParser
    stats: SourceStats
    watermark: int | None = None
    last: int | None = None
    lineno: int = 0
    leading: list[Placed] = field(default_factory=list)


class Orderer:
    """Parse per-input streams of access-log lines and merge them into one ordered by instant.

    :param sources: one iterable of raw lines per input, in argument order.
    :param window: seconds a line may be written after a later-stamped line of its file.
    :param on_lines: called with the number of lines read, after each chunk.
    :param origin: the epoch the lines' instants count from (see AccessParser).
    :param spill: given the first piece of a line too long to hold and the rest of its
        input, consumes the line's pieces and returns what stands for it in the output.
    """

    def __init__(
        self,
        sources: Iterable[Iterable[bytes]],
        window: int,
        on_lines: Callable[[int], None] | None,
        origin: int,
        spill: Callable[[bytes, Iterator[bytes]], bytes],
    ) -> None:
        self._sources = [_Source(iter(lines), AccessParser(origin), SourceStats())
                         for lines in sources]
        self.stats = [source.stats for source in self._sources]
        self._window = window
        self._on_lines = on_lines
        self._spill = spill
        self._buckets: dict[int, list[Placed]] = {}
        self._seconds: list[int] = []
        self._released: int | None = None

    def __iter__(self) -> Iterator[tuple[int, list[Placed]]]:
        """Yield, second by second, the second and its lines in output order."""
        active = list(range(len(self._sources)))
        while active:
            index = min(active, key=self._read_priority)
            if not self._read_chunk(index):
                active.remove(index)
                self._flush_leading(self._sources[index], None)
            yield from self._release(self._low_mark(active))
        yield from self._release(None)

    def _read_priority(self, index: int) -> tuple[bool, int]:
        watermark = self._sources[index].watermark
        return (watermark is not None, watermark or 0)

    def _low_mark(self, active: list[int]) -> int | None:
        """The newest second that no unfinished input can still add lines to (in window)."""
        marks = [self._sources[i].watermark for i in active]
        if not marks:
            return None
        if any(mark is None for mark in marks):
            return _NEVER
        return min(marks) - self._window - 1  # type: ignore[type-var, operator]

    def _read_chunk(self, index: int) -> bool:
        """Read up to a chunk of lines from one input; False once it is exhausted."""
        source = self._sources[index]
        buckets = self._buckets
        lineno = source.lineno
        last = source.last
        mark = source.watermark if source.watermark is not None else _NEVER
        unparsable = 0
        fields = source.parser.fields
        for raw in itertools.islice(source.lines, _CHUNK):
            lineno += 1
            if raw[-1] != 10:  # the first piece of a line too long to hold: unparsable
                raw = self._spill(raw, source.lines)
                epoch, start, request = None, 0, None
            else:
                epoch, start, request = fields(raw)
            placed = (index, lineno, raw, epoch, start, request)
            if epoch is None:
                unparsable += 1
                if last is None:
                    source.leading.append(placed)
                    if len(source.leading) >= _LEADING_MAX:
                        self._flush_leading(source, None)
                else:
                    self._place(placed, last)
                continue
            if last is None and source.leading:
                self._flush_leading(source, epoch)
            last = epoch
            if epoch > mark:
                mark = epoch
            bucket = buckets.get(epoch)
            if bucket is not None:  # released seconds have no bucket left
                bucket.append(placed)
            else:
                self._place(placed, epoch)
        count = lineno - source.lineno
        source.lineno, source.last = lineno, last
        source.watermark = None if mark == _NEVER else mark
        source.stats.lines += count
        source.stats.unparsable += unparsable
        if self._on_lines is not None and count:
            self._on_lines(count)
        return count == _CHUNK

    def _flush_leading(self, source: _Source, epoch: int | None) -> None:
        """Place the unstamped lines at the head of a file with the first stamp found."""
        if not source.leading:
            return
        at = epoch if epoch is not None else self._floor()
        for placed in source.leading:
            self._place(placed, at)
        source.leading.clear()

    def _floor(self) -> int:
        """The earliest second still open for output."""
        if self._released is not None:
            return self._released + 1
        return self._seconds[0] if self._seconds else _NEVER

    def _place(self, placed: Placed, epoch: int) -> None:
        if self._released is not None and epoch <= self._released:
            if placed[3] is not None:
                self._sources[placed[0]].stats.out_of_order += 1
            epoch = self._released + 1
        bucket = self._buckets.get(epoch)
        if bucket is None:
            bucket = self._buckets[epoch] = []
            heapq.heappush(self._seconds, epoch)
        bucket.append(placed)

    def _release(self, upto: int | None) -> Iterator[tuple[int, list[Placed]]]:
        """Yield every bucket up to second ``upto`` (all of them when None), in order.

        A bucket sorts as plain tuples: (input, line number) never tie, so the lines
        themselves are never compared.
        """
        seconds = self._seconds
        while seconds and (upto is None or seconds[0] <= upto):
            second = heapq.heappop(seconds)
            bucket = self._buckets.pop(second)
            self._released = second
            bucket.sort()
            yield second, bucket
