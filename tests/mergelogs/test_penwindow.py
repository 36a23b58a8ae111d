"""The pen.log window on its own: loading odd lines, taking across generations, voting."""

from __future__ import annotations

import pytest

from mergelogs.clock import ClockOffset
from mergelogs.penwindow import PenWindow
from tests.mergelogs.conftest import BASE

REQUEST = b"GET /a HTTP/1.1"


def window(lines: list[bytes], jitter: int = 40, **kwargs) -> PenWindow:
    """A window holding all of ``lines`` (a generation is a quarter of ``jitter``)."""
    result = PenWindow(lines, jitter, **kwargs)
    result.load(2**62)
    return result


def entry(client: str, second: int, server: str = "10.0.0.1", request: bytes = REQUEST) -> bytes:
    return b"%s %d %s %s\n" % (client.encode(), BASE + second, server.encode(), request)


def clock(offset: float = 0.0) -> ClockOffset:
    result = ClockOffset(5)
    result.offset = offset
    result._bounds()
    return result


def test_odd_pen_log_lines_are_counted_not_indexed():
    lines = [
        entry("192.0.2.1", 0),
        b"(cannot convert address) %d 10.0.0.1 %s\n" % (BASE, REQUEST),
        b" %d 10.0.0.1 %s\n" % (BASE, REQUEST),  # a Unix-socket peer: no client
        b"192.0.2.2\t %d 10.0.0.1 %s\n" % (BASE, REQUEST),
        b"pen: accept failed: Too many open files\n",
        b"192.0.2.3 12x 10.0.0.1 GET /\n",
        b"\n",
        b"192.0.2.4 %d 10.0.0.1 %s" % (BASE + 1, REQUEST),  # no final newline
    ]
    pens = window(lines)
    assert (pens.stats.entries, pens.stats.unusable) == (8, 6)
    key = ("10.0.0.1", REQUEST)
    assert pens.take(key, BASE, clock()) == b"192.0.2.1"
    assert pens.take(key, BASE, clock()) == b"192.0.2.4"
    assert pens.take(key, BASE, clock()) is None


def test_same_second_stamp_is_read_again_after_an_odd_line():
    lines = [entry("192.0.2.1", 0), b"junk\n", b"192.0.2.2 %d 10.0.0.1 %s\n" % (BASE, REQUEST),
             entry("192.0.2.3", 30)]
    pens = window(lines)
    key = ("10.0.0.1", REQUEST)
    assert pens.take(key, BASE + 30, clock()) == b"192.0.2.3"
    assert [pens.take(key, BASE, clock()) for _ in range(2)] == [b"192.0.2.1", b"192.0.2.2"]


def test_other_servers_entries_are_not_kept():
    pens = window([entry("192.0.2.1", 0, "10.0.0.2"), entry("192.0.2.2", 0)],
                  servers={"10.0.0.1"})
    assert pens.take(("10.0.0.2", REQUEST), BASE, clock()) is None
    assert pens.take(("10.0.0.1", REQUEST), BASE, clock()) == b"192.0.2.2"
    assert pens.stats.entries == 2


@pytest.mark.parametrize("start", range(-12, 12))
def test_a_line_takes_its_reach_first_across_generation_boundaries(start):
    """Generations are 10 s here: wherever the boundary falls, the earliest entry within
    the line's reach wins, then the nearest within jitter, earlier on a tie."""
    seconds = [start - 20, start - 1, start + 1, start + 25]
    pens = window([entry(f"192.0.2.{i}", second) for i, second in enumerate(seconds, 1)])
    key = ("10.0.0.1", REQUEST)
    assert pens.take(key, BASE + start, clock()) == b"192.0.2.2"
    assert pens.take(key, BASE + start, clock()) == b"192.0.2.3"
    assert pens.take(key, BASE + start, clock()) == b"192.0.2.1"  # 20 s before beats 25 after
    assert pens.take(key, BASE + start, clock()) == b"192.0.2.4"
    assert pens.take(key, BASE + start, clock()) is None


def test_nearest_beyond_reach_ties_go_earlier_and_jitter_is_strict():
    pens = window([entry("192.0.2.1", -15), entry("192.0.2.2", 15), entry("192.0.2.3", 41)])
    key = ("10.0.0.1", REQUEST)
    assert pens.take(key, BASE, clock()) == b"192.0.2.1"
    assert pens.take(key, BASE, clock()) == b"192.0.2.2"
    assert pens.take(key, BASE, clock()) is None  # 41 s away with a jitter of 40


def test_clock_offset_moves_the_reach():
    pens = window([entry("192.0.2.1", 0), entry("192.0.2.2", 3)])
    assert pens.take(("10.0.0.1", REQUEST), BASE, clock(3.0)) == b"192.0.2.2"


def test_votes_share_one_vote_and_busy_requests_abstain():
    rare = [entry("192.0.2.1", 2), entry("192.0.2.2", 2), entry("192.0.2.3", -3)]
    busy = [entry("192.0.2.9", second, request=b"GET /busy HTTP/1.1") for second in range(-40, 41)]
    pens = window(rare + busy)
    votes = clock()
    pens.vote(("10.0.0.1", REQUEST), BASE, votes)
    assert votes.tally[5 + 2] == pytest.approx(2 / 3)
    assert votes.tally[5 - 3] == pytest.approx(1 / 3)
    wide = ClockOffset(40)  # 81 seconds with entries around the line: more than 32
    pens.vote(("10.0.0.1", b"GET /busy HTTP/1.1"), BASE, wide)
    assert wide.votes == 1 and sum(wide.tally) == 0.0


def test_eviction_drops_old_generations_only():
    pens = window([entry("192.0.2.1", 0), entry("192.0.2.2", 100)])
    key = ("10.0.0.1", REQUEST)
    pens.evict(BASE + 50)
    assert pens.entry_counts("10.0.0.1", [REQUEST], BASE - 10, BASE + 110) == {BASE + 100: 1}
    assert pens.take(key, BASE + 100, clock()) == b"192.0.2.2"


def test_entry_counts_count_used_entries_too():
    pens = window([entry("192.0.2.1", 0), entry("192.0.2.2", 0), entry("192.0.2.3", 9)])
    pens.take(("10.0.0.1", REQUEST), BASE, clock())
    assert pens.entry_counts("10.0.0.1", [REQUEST, b"GET /none"], BASE - 20, BASE + 20) == {
        BASE: 2, BASE + 9: 1}
