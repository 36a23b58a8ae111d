"""Memory is bounded by the windows, not by the length of the logs."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from mergelogs.merge import Backend, Merger, Settings
from tests.mergelogs.conftest import BASE, clf, pen


def farm(count: int):
    """Lazily made pen.log and two backend logs at 100 req/s, written in completion order."""
    rng = random.Random(count)
    requests = [(BASE + i // 100, rng.randrange(2), b"GET /p/%d HTTP/1.1" % rng.randrange(500),
                 f"198.51.100.{rng.randrange(1, 250)}") for i in range(count)]

    def backend(index):
        late = []
        for t, b, uri, _ in requests:
            if b == index:
                late.append((t + rng.randrange(3), clf("10.0.0.254", t, uri)))
                late.sort()
                while late and late[0][0] <= t:
                    yield late.pop(0)[1]
        yield from (line for _, line in late)

    pens = (pen(client, t, f"10.0.0.{b + 1}", uri) for t, b, uri, client in requests)
    return pens, [backend(0), backend(1)]


def peak_bytes(count: int) -> int:
    pens, logs = farm(count)
    merger = Merger([Backend("10.0.0.1", "a"), Backend("10.0.0.2", "b")], logs, pens,
                    Settings(jitter=30, window=10, radius=5))
    tracemalloc.start()
    try:
        lines = sum(1 for _ in merger)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert lines == count


@pytest.mark.timeout(180)
def test_peak_memory_does_not_grow_with_log_length():
    short, long = peak_bytes(15_000), peak_bytes(60_000)
    assert long < short * 1.3
