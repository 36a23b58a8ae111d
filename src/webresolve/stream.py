"""Lines in, lines out in the same order, with lookups overlapping inside a bounded window.

Design notes
------------
Each line goes into a FIFO with the future of its address (or none). The head of the FIFO
is written as soon as its future is done; when the FIFO holds ``window`` lines, reading
waits for the head. So memory is bounded by the window (plus one entry per distinct
address in the engine), output order is input order, and a slow address holds output back
by at most ``window`` lines. Reading yields to the event loop whenever a new lookup is
queued, and every ``_YIELD_EVERY`` lines (not on every line: that would cost more than
the lookups), so workers start sending while the window fills and answers are taken in
before their timers fire.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

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
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Write every line of ``lines`` through ``write``, its field ``field`` resolved.

    :param window: the most lines held back waiting for answers.
    :param on_progress: called with the number of lines written since the last call.
    """
    pending: deque[Entry] = deque()
    stats = engine.stats
    written = 0
    whole = True  # a line too long to hold comes in pieces: passed on untouched
    for line in lines:
        stats.lines += 1
        span = locate(line, field) if whole and line[-1:] == b"\n" else None
        whole = line[-1:] == b"\n"
        known = stats.addresses
        future = None if span is None else engine.future_for(line[span[0] : span[1]])
        if future is None:
            stats.with_name += 1
        started = future is not None and stats.addresses != known and not future.done()
        if started or not stats.lines % _YIELD_EVERY:
            await asyncio.sleep(0)
        pending.append((line, span, future))
        written += await _flush(pending, write, len(pending) > window)
        if on_progress is not None and written >= _PROGRESS_EVERY:
            on_progress(written)
            written = 0
    while pending:
        written += await _flush(pending, write, True)
    if on_progress is not None:
        on_progress(written)


async def _flush(pending: deque[Entry], write: Callable[[bytes], object], wait: bool) -> int:
    """Write the done lines at the head of ``pending``; with ``wait``, at least one."""
    count = 0
    while pending:
        line, span, future = pending[0]
        if future is not None and not future.done():
            if not wait:
                break
            await future
        pending.popleft()
        write(line if future is None or span is None else rewrite(line, span, future.result()))
        count += 1
        wait = False
    return count
