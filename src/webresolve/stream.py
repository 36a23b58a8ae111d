"""Lines in, lines out in the same order, every lookup started as soon as its line is read.

Design notes
------------
Reading runs ahead of the output. Each line is read, its address handed to the engine
(which starts the lookup at once, or finds the one already started), and the line put in
a :class:`Backlog` with its future; the head of the backlog is written as soon as its
future is done. A black hole at the head therefore holds output back, never reading: the
lookups behind it go on, so all waits overlap and a run takes about one lifetime plus the
lookups at full concurrency. What bounds the run instead:

- memory: the backlog keeps ``budget`` bytes of lines in memory and spills the rest to a
  temporary file, read back in order (the entry of a line read back is found again from
  its field: the engine keeps one future per distinct address);
- lookups: reading pauses while ``window`` distinct addresses are queued or being asked,
  and goes on as each is answered.

A line read while nothing is held and its name is known (a repeated address, a cache or
hosts hit, a field that is no address) is written at once, without a trip through the
backlog. Reading yields to the event loop whenever a new lookup is queued, and every
``_YIELD_EVERY`` lines (not on every line: that would cost more than the lookups), so
workers start sending while reading goes on and answers are taken in before their timers
fire; writing yields as often, for a long backlog written at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from webresolve.backlog import Backlog
from webresolve.engine import Engine, NameFuture
from webresolve.rewrite import locate, rewrite

_PROGRESS_EVERY = 4096
_YIELD_EVERY = 512

Entry = tuple[bytes, tuple[int, int] | None, NameFuture | None]


async def resolve_lines(
    lines: Iterable[bytes],
    write: Callable[[bytes], object],
    engine: Engine,
    field: int = 1,
    window: int = 10000,
    *,
    budget: int = 32 << 20,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Write every line of ``lines`` through ``write``, its field ``field`` resolved.

    :param window: the most distinct addresses waiting for an answer while reading goes on.
    :param budget: bytes of held-back lines kept in memory; the rest wait in a temporary file.
    :param on_progress: called with the number of lines written since the last call.
    :raises OSError: the temporary file cannot be written or read.
    """
    stats = engine.stats

    def revive(line: bytes) -> Entry:
        span = locate(line, field)
        return line, span, None if span is None else engine.future_for(line[span[0] : span[1]])

    backlog: Backlog[Entry] = Backlog(budget, revive)
    written = 0
    try:
        for line in lines:
            stats.lines += 1
            span = locate(line, field)
            known = stats.addresses
            future = None if span is None else engine.future_for(line[span[0] : span[1]])
            if future is None:
                stats.with_name += 1
            if backlog or not (future is None or future.done()):
                backlog.push((line, span, future))
            else:  # nothing held and the name known: the common case skips the backlog
                write(_resolved(line, span, future))
                written += 1
            started = future is not None and stats.addresses != known and not future.done()
            if started or not stats.lines % _YIELD_EVERY:
                await asyncio.sleep(0)
            while engine.unanswered >= window:
                written += await _flush(backlog, write, False)
                await engine.answered()
            if backlog:
                written += await _flush(backlog, write, False)
            if on_progress is not None and written >= _PROGRESS_EVERY:
                on_progress(written)
                written = 0
        while backlog.head() is not None:
            written += await _flush(backlog, write, True)
    finally:
        stats.spilled = backlog.spilled
        backlog.close()
    if on_progress is not None:
        on_progress(written)


async def _flush(backlog: Backlog[Entry], write: Callable[[bytes], object], wait: bool) -> int:
    """Write the done lines at the head of ``backlog``; with ``wait``, at least one."""
    count = 0
    while (entry := backlog.head()) is not None:
        line, span, future = entry
        if future is not None and not future.done():
            if not wait:
                break
            await future
        backlog.pop()
        write(_resolved(line, span, future))
        count += 1
        wait = False
        if not count % _YIELD_EVERY:
            await asyncio.sleep(0)
    return count


def _resolved(line: bytes, span: tuple[int, int] | None, future: NameFuture | None) -> bytes:
    """``line`` as written: its field replaced by the name ``future`` found, if any."""
    return line if future is None or span is None else rewrite(line, span, future.result())
