"""pen.log format: the writer's reduction rules and the reader's round trip (no sockets)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pen.penlog import KEEP_MAX, PenRecord, format_line, format_netlog, parse_line, reduce_request


@pytest.mark.parametrize(
    ("data", "logged"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1"),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\n", b"GET /caf.. HTTP/1.1"),
        (b"GET /\x07\ttab HTTP/1.0\n", b"GET /\x07\ttab HTTP/1.0"),
        (b"hello=w\xc3\xa9\x01d", b"hello=w..\x01d"),
        (b"\r\nGET / HTTP/1.1", b""),
        (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n", (b"GET /" + b"a" * 200)[:KEEP_MAX]),
    ],
)
def test_reduce_request_follows_pen(data, logged):
    assert reduce_request(data) == logged


def test_format_line_is_the_spec_line():
    line = format_line("127.0.0.2", 1795577386, "127.0.0.1", b"GET /?q=1 HTTP/1.1\r\n\r\n")
    assert line == b"127.0.0.2 1795577386 127.0.0.1 GET /?q=1 HTTP/1.1\n"


def test_netlog_keeps_high_bytes_and_cuts_at_crlf():
    datagram = format_netlog("10.0.0.9", "10.0.0.1", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n")
    assert datagram == b"+ 10.0.0.9 10.0.0.1 GET /\xc3\xa9 HTTP/1.1\n"


@pytest.mark.parametrize(
    ("line", "record"),
    [
        (
            b"127.0.0.1 1795577386 127.0.0.1 GET / HTTP/1.1\n",
            PenRecord("127.0.0.1", 1795577386, "127.0.0.1", b"GET / HTTP/1.1"),
        ),
        (b" 17 10.0.0.1 GET /\n", PenRecord("", 17, "10.0.0.1", b"GET /")),
        (
            b"(cannot convert address) 5 ::1 x y\n",
            PenRecord("(cannot convert address)", 5, "::1", b"x y"),
        ),
        (b"2001:db8::1 9 10.0.0.1 \n", PenRecord("2001:db8::1", 9, "10.0.0.1", b"")),
        (b"garbage\n", None),
        (b"1.2.3.4 notanumber 1.2.3.5 GET /\n", None),
    ],
)
def test_parse_line(line, record):
    assert parse_line(line) == record


@given(
    client=st.from_regex(r"[0-9a-f.:]{1,39}", fullmatch=True),
    epoch=st.integers(0, 2**40),
    server=st.from_regex(r"[0-9a-f.:]{1,39}", fullmatch=True),
    data=st.binary(max_size=300),
)
def test_round_trip(client, epoch, server, data):
    record = parse_line(format_line(client, epoch, server, data))
    assert record == PenRecord(client, epoch, server, reduce_request(data))
