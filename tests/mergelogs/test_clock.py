"""Backend clock offsets: votes when some requests are rare, counts when every one is popular."""

from __future__ import annotations

import random

import pytest
from bench import genlogs, score

from mergelogs.clock import COUNT_EVERY, COUNT_SPAN, MIN_SECONDS, ClockOffset, count_lag
from mergelogs.merge import Backend, Merger, Settings
from tests.mergelogs.conftest import BASE, clf, pen


def poisson_farm(lag: float, seconds: int = 120, rate: int = 250, seed: int = 1):
    """Lines per backend second, and pen's entries per second for them ``lag`` seconds on."""
    rng = random.Random(seed)
    lines: dict[int, int] = {}
    entries: dict[int, int] = {}
    for second in range(1000, 1000 + seconds):
        lines[second] = sum(rng.random() < 0.1 for _ in range(10 * rate))  # about Poisson
        for _ in range(lines[second]):
            at = int(second + rng.random() + lag)
            entries[at] = entries.get(at, 0) + 1
    return lines, entries


@pytest.mark.parametrize("lag", [0.0, 2.0, -1.5, 2.485, -3.9, 30.2])
def test_count_lag_finds_whole_and_fractional_offsets(lag):
    lines, entries = poisson_farm(lag)
    found = count_lag(lines, entries, 1040, 1100, 60)
    assert found is not None and abs(found - lag) < 0.35  # the matcher reaches 1.1 s


def test_count_lag_needs_related_series_and_enough_seconds():
    lines, _ = poisson_farm(0.0)
    _, unrelated = poisson_farm(0.0, seed=2)
    assert count_lag(lines, unrelated, 1040, 1100, 60) is None
    lines, entries = poisson_farm(1.0)
    assert count_lag(lines, entries, 1040, 1040 + MIN_SECONDS - 2, 60) is None


def test_thin_votes_do_not_move_the_offset():
    """A few popular-request votes spread thinly must not place the offset anywhere."""
    clock = ClockOffset(60)
    rng = random.Random(3)
    for i in range(2 * ClockOffset.REFRESH_EVERY):
        for _ in range(40):
            clock.tally[rng.randrange(len(clock.tally))] += 1 / 40
        clock.counted(1000 + i)
    assert clock.offset == 0.0 and clock.weak and not clock.settled


def test_rare_request_votes_settle_the_offset():
    clock = ClockOffset(60)
    for i in range(ClockOffset.REFRESH_EVERY):
        clock.tally[60 + 3] += 1.0
        clock.counted(1000 + i)
    assert clock.offset == 3.0 and clock.settled and not clock.weak


def test_every_request_popular_still_merges_right(tmp_path):
    """Four paths at 1000 req/s on four backends up to 5 s off: no request is rare enough to
    vote, the counts place every offset before any line is matched."""
    farm = genlogs.Farm(backends=4, rate=1000.0, requests=40_000, skew=5.0, seed=3, paths=4,
                        rare=False, huge_share=0.0, garbage_share=0.0)
    genlogs.write_farm(farm, tmp_path)
    backends = [Backend(farm.address(i), str(tmp_path / genlogs.access_file(i + 1)))
                for i in range(farm.backends)]
    logs = [open(backend.name, "rb") for backend in backends]  # noqa: SIM115
    try:
        with open(tmp_path / genlogs.PEN_FILE, "rb") as pen:
            merger = Merger(backends, logs, pen, Settings())
            with open(tmp_path / "merged", "wb") as out:
                for batch in merger.batches():
                    out.writelines(batch)
    finally:
        for log in logs:
            log.close()
    result = score.score_file(tmp_path / genlogs.TRUTH_FILE, tmp_path / genlogs.PEN_FILE,
                              tmp_path / "merged")
    assert result.lost == 0 and result.extra == 0 and result.accuracy == 1.0
    truth = [-skew for skew in farm.clock_skews()]
    estimated = [backend.offset for backend in merger.result().backends]
    assert all(abs(e - t) < 0.6 for e, t in zip(estimated, truth, strict=True))


def test_a_backend_missing_from_pen_log_passes_through_in_bounded_memory():
    """A mistyped address: no entries, so its votes never firm up. Its lines still all come
    out with their own client, and what it counts for the count fit stays within the span."""
    rate = 50  # more distinct requests in a span than are ever fitted
    lost = [clf("10.0.0.100", BASE + i // rate, b"GET /u/%d HTTP/1.1" % i) for i in range(12000)]
    good = [clf("10.0.0.100", BASE + i // rate, b"GET /g/%d HTTP/1.1" % i) for i in range(12000)]
    pens = [pen(f"192.0.2.{i % 250 + 1}", BASE + i // rate, "10.0.0.1",
                b"GET /g/%d HTTP/1.1" % i) for i in range(12000)]
    rejects = []
    merger = Merger([Backend("10.0.0.1", "good"), Backend("10.0.0.9", "typo")], [good, lost],
                    pens, Settings(), rejects.append)
    out = [line for batch in merger.batches() for line in batch]
    assert sorted(out) == sorted([line.replace(b"10.0.0.100", b"192.0.2.%d" % (i % 250 + 1))
                                  for i, line in enumerate(good)] + lost)
    assert {r.reason for r in rejects} == {"no pen.log entry"} and len(rejects) == len(lost)
    typo = merger._clocks[1]
    assert not typo.settled
    assert len(typo.requests) <= rate * (COUNT_SPAN + COUNT_EVERY + 1)
