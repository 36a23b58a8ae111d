"""One run: inputs through the engine to the output, on an event loop of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, BinaryIO

from webresolve.cache import Cache
from webresolve.engine import Engine, Settings
from webresolve.stats import Stats
from webresolve.stream import resolve_lines


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when installed (a third less CPU per query), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def resolve_all(
    lines: Iterable[bytes],
    out: BinaryIO,
    settings: Settings,
    stats: Stats,
    *,
    field: int = 1,
    window: int = 10000,
    budget: int = 32 << 20,
    hosts: dict[str, str] | None = None,
    cache: Cache | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Resolve ``lines`` into ``out``, filling ``stats``.

    :raises OSError: writing ``out`` failed.
    :raises CacheError: the cache could not be read or written.
    """
    started = time.perf_counter()
    async with Engine(settings, stats, hosts, cache) as engine:
        await resolve_lines(
            lines, out.write, engine, field, window, budget=budget, on_progress=on_progress
        )
    stats.elapsed = time.perf_counter() - started
    if cache is not None:
        cache.purge(time.time())


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to completion on a fresh event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)
