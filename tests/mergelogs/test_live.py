"""penlogd's pure merge: datagrams in with ``now``, lines out; no socket, no clock."""

from __future__ import annotations

from mergelogs.live import PENDING_MAX, LiveMerger, LiveSettings
from pen.penlog import format_netlog

from .conftest import BASE, clf

WEB = "10.0.0.1"
"""The web server: the datagrams' source, and the server field of pen's entries."""


def entry(client: str, request: bytes, server: str = WEB) -> bytes:
    """pen's netlog datagram for a client's first read, through the one netlog writer."""
    return format_netlog(client, server, request + b"\r\nHost: x\r\n\r\n")


def run(merger: LiveMerger, events: list[tuple[float, bytes]], source: str = WEB) -> list[bytes]:
    """Feed ``(now, datagram)`` events, then let every line fall due; all output in order."""
    out = []
    for now, data in events:
        out += merger.receive(data, source, now)
    out += merger.due(events[-1][0] + 3600)
    return out


def test_entry_then_line_gets_the_real_client():
    line = clf("10.0.0.254", BASE, b"GET /a HTTP/1.1")
    out = run(LiveMerger(), [(BASE + 0.1, entry("192.0.2.7", b"GET /a HTTP/1.1")),
                             (BASE + 0.4, line)])
    assert out == [b"192.0.2.7" + line[len(b"10.0.0.254"):]]


def test_a_line_waits_for_its_entry_then_goes_out():
    merger = LiveMerger(LiveSettings(hold=2.0))
    line = clf("10.0.0.254", BASE, b"GET /a HTTP/1.1")
    assert merger.receive(line, WEB, BASE + 0.2) == []
    assert merger.next_due() == BASE + 2.2
    assert merger.receive(entry("192.0.2.7", b"GET /a HTTP/1.1"), WEB, BASE + 0.3) == []
    assert merger.due(BASE + 2.1) == []
    assert merger.due(BASE + 2.2) == [b"192.0.2.7" + line[10:]]
    assert merger.next_due() is None


def test_an_entry_later_than_the_wait_is_too_late():
    merger = LiveMerger(LiveSettings(hold=1.0))
    line = clf("10.0.0.254", BASE, b"GET /a HTTP/1.1")
    merger.receive(line, WEB, BASE)
    assert merger.receive(entry("192.0.2.7", b"GET /a HTTP/1.1"), WEB, BASE + 1.5) == [line]
    assert merger.stats.unmatched == 1


def test_one_to_one_two_clients_same_request_same_second():
    events = [(BASE + 0.1, entry("192.0.2.3", b"GET /same HTTP/1.1")),
              (BASE + 0.2, entry("192.0.2.4", b"GET /same HTTP/1.1"))]
    events += [(BASE + 0.5, clf("10.0.0.254", BASE, b"GET /same HTTP/1.1"))] * 2
    out = run(LiveMerger(), events)
    assert [line.split(b" ")[0] for line in out] == [b"192.0.2.3", b"192.0.2.4"]


def test_an_entry_is_used_once_and_the_next_line_keeps_its_client():
    line = clf("10.0.0.254", BASE, b"GET /once HTTP/1.1")
    out = run(LiveMerger(), [(BASE, entry("192.0.2.3", b"GET /once HTTP/1.1")),
                             (BASE + 0.5, line), (BASE + 0.6, line)])
    assert out == [b"192.0.2.3" + line[10:], line]


def test_time_aware_an_old_entry_beyond_jitter_does_not_match():
    line = clf("10.0.0.254", BASE + 300, b"GET /a HTTP/1.1")
    out = run(LiveMerger(LiveSettings(jitter=60)),
              [(BASE, entry("192.0.2.7", b"GET /a HTTP/1.1")), (BASE + 300.5, line)])
    assert out == [line]


def test_the_nearest_entry_wins_and_the_other_server_is_ignored():
    request = b"GET /n HTTP/1.1"
    events = [(BASE - 40, entry("192.0.2.1", request)),
              (BASE, entry("192.0.2.2", request, server="10.0.0.2")),  # another backend's
              (BASE - 1, entry("192.0.2.3", request)),
              (BASE + 0.5, clf("10.0.0.254", BASE, request))]
    assert run(LiveMerger(), events)[0].split(b" ")[0] == b"192.0.2.3"


def test_a_request_of_100_bytes_and_more_matches():
    request = b"GET /" + b"x" * 150 + b"?q=1 HTTP/1.1"
    line = clf("10.0.0.254", BASE, request)
    out = run(LiveMerger(), [(BASE, entry("192.0.2.9", request)), (BASE + 0.3, line)])
    assert out == [b"192.0.2.9" + line[10:]]


def test_non_ascii_request_matches_apache_escaping():
    raw = b"GET /caf\xc3\xa9 HTTP/1.1"
    line = clf("10.0.0.254", BASE, b"GET /caf\\xc3\\xa9 HTTP/1.1")
    out = run(LiveMerger(), [(BASE, entry("192.0.2.9", raw)), (BASE + 0.3, line)])
    assert out == [b"192.0.2.9" + line[10:]]


def test_hostile_entries_are_never_written():
    merger = LiveMerger()
    request = b"GET /h HTTP/1.1"
    for bad in (b"+ \x1b[2J 10.0.0.1 GET /h HTTP/1.1\n", b"+ evil.example 10.0.0.1 GET /h\n",
                b"+  10.0.0.1 GET /h HTTP/1.1\n", b"+ 192.0.2.1\n", b"+ 192.0.2.1 x GET /h\n"):
        merger.receive(bad, "127.0.0.1", BASE)
    line = clf("10.0.0.254", BASE, request)
    assert run(merger, [(BASE + 0.2, line)]) == [line]
    assert merger.stats.unusable == 5 and merger.stats.entries == 0


def test_lines_without_a_stamp_or_request_go_out_unchanged_in_order():
    lines = [b"garbage\n", clf("10.0.0.254", BASE, b"GET /a HTTP/1.1"),
             b'10.0.0.254 - - [25/Nov/2026:03:29:46 +0000] "-" 408 0 "-" "-"\n']
    out = run(LiveMerger(), [(BASE, entry("192.0.2.9", b"GET /a HTTP/1.1"))]
              + [(BASE + 0.1, line) for line in lines])
    assert out == [lines[0], b"192.0.2.9" + lines[1][10:], lines[2]]


def test_a_datagram_without_newline_and_one_with_two_lines():
    first, second = clf("10.0.0.254", BASE, b"GET /1 HTTP/1.1"), clf("10.0.0.254", BASE, b"GET /2")
    out = run(LiveMerger(), [(BASE, first.rstrip(b"\n")), (BASE, first + second)])
    assert out == [first, first, second]


def test_entries_beyond_n_are_forgotten_oldest_first():
    merger = LiveMerger(LiveSettings(entries_max=10, jitter=600))
    for i in range(40):
        merger.receive(entry(f"192.0.2.{i + 1}", b"GET /%d HTTP/1.1" % i), WEB, BASE + i * 10)
    assert merger.stats.forgotten == 30
    old = clf("10.0.0.254", BASE, b"GET /0 HTTP/1.1")
    new = clf("10.0.0.254", BASE + 390, b"GET /39 HTTP/1.1")
    out = run(merger, [(BASE + 391, old), (BASE + 391, new)])
    assert out == [old, b"192.0.2.40" + new[10:]]


def test_old_entries_are_forgotten_with_time():
    merger = LiveMerger(LiveSettings(keep=600))
    merger.receive(entry("192.0.2.1", b"GET /a HTTP/1.1"), WEB, BASE)
    merger.receive(entry("192.0.2.2", b"GET /b HTTP/1.1"), WEB, BASE)
    line = clf("10.0.0.254", BASE, b"GET /a HTTP/1.1")
    # A 500-second download: its line comes late, its entry is still there.
    assert run(merger, [(BASE + 500, line)]) == [b"192.0.2.1" + line[10:]]
    merger.due(BASE + 1000)
    line = clf("10.0.0.254", BASE, b"GET /b HTTP/1.1")
    assert run(merger, [(BASE + 1000, line)]) == [line]


def test_waiting_lines_are_bounded_and_flush_releases_the_rest():
    merger = LiveMerger()
    line = clf("10.0.0.254", BASE, b"GET /a HTTP/1.1")
    out = []
    for _ in range(PENDING_MAX + 5):
        out += merger.receive(line, WEB, BASE)
    assert len(out) == 5
    assert len(merger.flush()) == PENDING_MAX and merger.next_due() is None


def test_a_web_server_clock_ahead_is_learnt():
    """A web server 7 s ahead of pen's host: its offset is voted in and its lines match."""
    merger = LiveMerger(LiveSettings(jitter=3))
    out = []
    for i in range(200):
        now = BASE + i * 0.5
        request = b"GET /item/%d HTTP/1.1" % i
        out += merger.receive(entry(f"192.0.2.{i % 200 + 1}", request), WEB, now)
        out += merger.receive(clf("10.0.0.254", int(now) + 7, request), WEB, now + 0.1)
    out += merger.flush()
    clients = [line.split(b" ")[0] for line in out]
    assert clients[-100:] == [b"192.0.2.%d" % (i % 200 + 1) for i in range(100, 200)]
