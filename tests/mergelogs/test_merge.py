"""The merge core on in-memory logs: ordering, completeness and one-to-one matching."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mergelogs.accesslog import AccessParser, client_span
from mergelogs.merge import Backend, Merger, Settings
from pen.penlog import parse_line
from tests.mergelogs.conftest import BASE, clf, pen


def merge(logs, pen_lines, addresses=None, **options):
    addresses = addresses or [f"10.0.0.{i + 1}" for i in range(len(logs))]
    backends = [Backend(a, f"log{i}") for i, a in enumerate(addresses)]
    rejects = []
    merger = Merger(backends, logs, pen_lines,
                    Settings(**options), rejects.append)
    return list(merger), rejects, merger


def without_client(line: bytes) -> bytes:
    start, end = client_span(line)
    return line[:start] + line[end:]


def clients_by_request(out):
    parser = AccessParser()
    return [(parser.parse(x).request, parser.parse(x).client) for x in out]


@st.composite
def farms(draw):
    """1-3 backend logs of nearly sorted lines (lateness within the window), with junk."""
    logs = []
    for _ in range(draw(st.integers(1, 3))):
        count = draw(st.integers(0, 40))
        lines = []
        now = BASE
        for _ in range(count):
            now += draw(st.integers(0, 3))
            kind = draw(st.sampled_from(["ok", "ok", "ok", "late", "junk", "blank"]))
            if kind == "junk":
                lines.append(draw(st.binary(max_size=30)).replace(b"\n", b"") + b"\n")
            elif kind == "blank":
                lines.append(b"\n")
            else:
                when = now - draw(st.integers(0, 30)) if kind == "late" else now
                offset = draw(st.sampled_from([0, -18000, 3600]))
                lines.append(clf("10.9.9.9", when, b"GET /%d HTTP/1.1" % draw(st.integers(0, 3)),
                                 offset))
        logs.append(lines)
    return logs


@settings(max_examples=150, deadline=None)
@given(farms(), st.integers(0, 3))
def test_every_line_once_and_in_order(logs, seed):
    rng = random.Random(seed)
    pen_lines = [pen(f"192.0.2.{rng.randrange(250)}", BASE + rng.randrange(120),
                     f"10.0.0.{rng.randrange(1, 4)}", b"GET /%d HTTP/1.1" % rng.randrange(4))
                 for _ in range(60)]
    out, _, _ = merge(logs, pen_lines, window=60)
    assert sorted(map(without_client, out)) == sorted(
        without_client(x) for log in logs for x in log)
    parser = AccessParser()
    times = [e for e in (parser.parse(x).epoch for x in out) if e is not None]
    assert times == sorted(times)


def test_ties_keep_file_order_then_argument_order():
    a = [clf("1.1.1.1", BASE, b"GET /a1 HTTP/1.1"), clf("1.1.1.1", BASE, b"GET /a2 HTTP/1.1")]
    b = [clf("1.1.1.1", BASE - 1, b"GET /b0 HTTP/1.1"), clf("1.1.1.1", BASE, b"GET /b1 HTTP/1.1")]
    out, _, _ = merge([a, b], [])
    assert out == [b[0], a[0], a[1], b[1]]


def test_unparsable_lines_stay_next_to_their_neighbours():
    a = [b"junk at start\n", clf("1.1.1.1", BASE + 5, b"GET /a HTTP/1.1"), b"junk after a\n",
         clf("1.1.1.1", BASE + 9, b"GET /c HTTP/1.1")]
    b = [clf("1.1.1.1", BASE + 7, b"GET /b HTTP/1.1")]
    out, rejects, merger = merge([a, b], [])
    assert out == [a[0], a[1], a[2], b[0], a[3]]
    assert [r.reason for r in rejects].count("unparsable") == 2
    assert merger.result().backends[0].unparsable == 2


def test_entries_are_used_once():
    # Two clients ask for the same URI in the same second: both must come out (C reuses one).
    log = [clf("10.0.0.100", BASE, b"GET /same HTTP/1.1")] * 2
    pens = [pen("192.0.2.3", BASE, "10.0.0.1", b"GET /same HTTP/1.1"),
            pen("192.0.2.4", BASE, "10.0.0.1", b"GET /same HTTP/1.1")]
    out, _, _ = merge([log], pens)
    assert sorted(c for _, c in clients_by_request(out)) == [b"192.0.2.3", b"192.0.2.4"]


def test_long_and_non_ascii_requests_match():
    long_uri = b"GET /" + b"p" * 150 + b" HTTP/1.1"
    log = [clf("10.0.0.100", BASE, long_uri),
           clf("10.0.0.100", BASE, b"GET /caf\\xc3\\xa9 HTTP/1.1"),
           clf("10.0.0.100", BASE, b"GET /caf\\xC3\\xA9?\\x22q\\x22 HTTP/1.1")]
    pens = [pen("192.0.2.1", BASE, "10.0.0.1", long_uri),
            pen("192.0.2.2", BASE, "10.0.0.1", b"GET /caf\xc3\xa9 HTTP/1.1"),
            pen("192.0.2.3", BASE, "10.0.0.1", b'GET /caf\xc3\xa9?"q" HTTP/1.1')]
    out, rejects, _ = merge([log], pens)
    assert [c for _, c in clients_by_request(out)] == [b"192.0.2.1", b"192.0.2.2", b"192.0.2.3"]
    assert rejects == []


def test_only_the_same_backend_matches():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1")]
    pens = [pen("192.0.2.1", BASE, "10.0.0.2", b"GET /x HTTP/1.1")]
    out, rejects, _ = merge([log], pens)
    assert out == log
    assert [r.reason for r in rejects] == ["no pen.log entry"]


def test_jitter_is_a_strict_window():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1")]
    pens = [pen("192.0.2.1", BASE + 700, "10.0.0.1", b"GET /x HTTP/1.1")]
    assert merge([log], pens, jitter=600)[0] == log
    assert clients_by_request(merge([log], pens, jitter=800)[0])[0][1] == b"192.0.2.1"


def test_shift_moves_pen_times():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1")]
    pens = [pen("192.0.2.1", BASE + 7200, "10.0.0.1", b"GET /x HTTP/1.1"),
            pen("192.0.2.2", BASE, "10.0.0.1", b"GET /x HTTP/1.1")]
    assert clients_by_request(merge([log], pens, jitter=10, shift=7200)[0])[0][1] == b"192.0.2.1"


def test_ipv6_backend_and_mapped_spelling():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1")]
    pens = [pen("2001:db8::7", BASE, "2001:0db8:0:0::1", b"GET /x HTTP/1.1")]
    out, _, _ = merge([log], pens, addresses=["2001:db8::1"])
    assert clients_by_request(out)[0][1] == b"2001:db8::7"


def test_nearest_entry_wins_and_ties_go_first_in():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1")]
    pens = [pen("192.0.2.1", BASE - 2, "10.0.0.1", b"GET /x HTTP/1.1"),
            pen("192.0.2.2", BASE + 1, "10.0.0.1", b"GET /x HTTP/1.1")]
    assert clients_by_request(merge([log], pens)[0])[0][1] == b"192.0.2.2"
    pens = [pen("192.0.2.1", BASE - 1, "10.0.0.1", b"GET /x HTTP/1.1"),
            pen("192.0.2.2", BASE + 1, "10.0.0.1", b"GET /x HTTP/1.1")]
    assert clients_by_request(merge([log], pens)[0])[0][1] == b"192.0.2.1"


def test_utc_rewrites_times_only():
    log = [clf("10.0.0.100", BASE, b"GET /x HTTP/1.1", offset=-18000)]
    pens = [pen("192.0.2.1", BASE, "10.0.0.1", b"GET /x HTTP/1.1")]
    out, _, _ = merge([log], pens, zone="+0000")
    assert out == [clf("192.0.2.1", BASE, b"GET /x HTTP/1.1", offset=0)]


def test_times_far_from_the_merge_origin_merge_alike():
    """A merge counts seconds from a recent origin (small ints are faster): logs of 1999 and
    of 2090, far outside the fast range, order, match and convert to UTC all the same."""
    for epoch in (936_000_000, 3_800_000_000):
        logs = [[clf("10.0.0.100", epoch + 1, b"GET /b HTTP/1.1", offset=-18000)],
                [clf("10.0.0.100", epoch, b"GET /a HTTP/1.1", offset=3600)]]
        pens = [pen("192.0.2.1", epoch, "10.0.0.2", b"GET /a HTTP/1.1"),
                pen("192.0.2.2", epoch + 1, "10.0.0.1", b"GET /b HTTP/1.1")]
        out, rejects, _ = merge(logs, pens, zone="+0000")
        assert out == [clf("192.0.2.1", epoch, b"GET /a HTTP/1.1"),
                       clf("192.0.2.2", epoch + 1, b"GET /b HTTP/1.1")]
        assert rejects == []


def test_clock_skew_is_estimated_for_popular_urls():
    """A popular URL at 20 req/s and a backend clock 4 s behind pen's: every line still gets a
    client that asked within a second of the real one."""
    rng = random.Random(7)
    skew = 4
    pens, log, truth = [], [], []
    for i in range(3000):
        t = BASE + i // 20
        client = f"198.51.{i // 250}.{i % 250}"
        uri = b"GET /popular HTTP/1.1" if rng.random() < 0.8 else b"GET /p/%d HTTP/1.1" % i
        pens.append(pen(client, t, "10.0.0.1", uri))
        log.append(clf("10.0.0.100", t - skew, uri))
        truth.append(t)
    out, _, merger = merge([log], pens, jitter=600)
    assert abs(merger.result().backends[0].offset - skew) < 0.5
    when = {}
    for line in pens:
        record = parse_line(line)
        when.setdefault(record.client, record.epoch)
    close = sum(abs(when[c.decode()] - t) <= 1
                for (_, c), t in zip(clients_by_request(out), truth, strict=True))
    assert close / len(out) >= 0.999
