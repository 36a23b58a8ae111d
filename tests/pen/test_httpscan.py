"""Request framing and -H rewriting of the client stream (no sockets)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pen.httpscan import RequestScanner

PIPELINE = (
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /b HTTP/1.1\r\nContent-Length: 12\r\n\r\nGET /no HTTP"
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\nX-T: 1\r\n\r\n"
    b"HEAD /d HTTP/1.0\r\n\r\n"
)


def first_lines(heads):
    return [h.split(b"\r\n")[0] for h in heads]


def feed_all(scanner, chunks):
    out, heads = b"", []
    for chunk in chunks:
        data, found = scanner.feed(chunk)
        out += data
        heads += found
    return out, heads


def test_pipelined_requests_each_reported_bodies_never():
    out, heads = RequestScanner().feed(PIPELINE)
    assert out == PIPELINE
    assert first_lines(heads) == [b"GET /a HTTP/1.1", b"POST /b HTTP/1.1", b"PUT /c HTTP/1.1",
                                  b"HEAD /d HTTP/1.0"]


@given(st.lists(st.integers(1, len(PIPELINE) - 1), max_size=12))
def test_any_split_finds_the_same_requests(cuts):
    cuts = sorted(set(cuts))
    chunks = [PIPELINE[a:b] for a, b in zip([0, *cuts], [*cuts, len(PIPELINE)], strict=True)]
    for rewrite in (False, True):
        out, heads = feed_all(RequestScanner("10.0.0.9", rewrite=rewrite), chunks)
        assert len(heads) == 4
        if not rewrite:
            assert out == PIPELINE
        else:
            assert out.count(b"X-Forwarded-For: 10.0.0.9\r\n") == 4


@pytest.mark.parametrize(
    ("data", "head"),
    [
        (b"EHLO mail.example\r\nMAIL FROM:<a@b>\r\n", b"EHLO mail.example\r\nMAIL FROM:<a@b>\r\n"),
        (b"\x16\x03\x01\x02\x00\x01", b"\x16\x03\x01\x02\x00\x01"),
        (b"USER anonymous\r\n", b"USER anonymous\r\n"),
    ],
)
def test_other_protocols_report_the_first_chunk_only(data, head):
    scanner = RequestScanner()
    assert scanner.feed(data) == (data, [head])
    assert scanner.tunnel
    assert scanner.feed(b"GET / HTTP/1.1\r\n\r\n")[1] == []


def test_upgrade_and_connect_become_tunnels():
    scanner = RequestScanner()
    _, heads = scanner.feed(
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
    )
    assert len(heads) == 1 and scanner.tunnel


def test_rewrite_appends_to_existing_xff_and_replaces_proto():
    scanner = RequestScanner("127.0.0.2", "https", rewrite=True)
    out, _ = scanner.feed(
        b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: ftp\r\n\r\n"
    )
    assert out == (b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4, 127.0.0.2\r\n"
                   b"X-Forwarded-Proto: https\r\n\r\n")


def test_rewrite_holds_a_split_head_and_keeps_lf_style():
    scanner = RequestScanner("127.0.0.2", rewrite=True)
    assert scanner.feed(b"GET / HTTP/1.0\nHost: a\n") == (b"", [])
    out, heads = scanner.feed(b"\nbody?")
    assert out.startswith(b"GET / HTTP/1.0\nHost: a\nX-Forwarded-For: 127.0.0.2\n"
                          b"X-Forwarded-Proto: http\n\n")
    assert len(heads) == 1


def test_leading_blank_lines_between_requests_are_skipped():
    _, heads = RequestScanner().feed(b"GET /1 HTTP/1.1\r\n\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    assert first_lines(heads) == [b"GET /1 HTTP/1.1", b"GET /2 HTTP/1.1"]
