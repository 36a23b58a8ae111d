"""Request framing and -H rewriting of the client stream (no sockets)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pen.httpscan import HEAD, REFUSED, SWITCH, RequestScanner, StatusWatch

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


FORGED = b"GET /x HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n"


@pytest.mark.parametrize(
    ("opening", "status", "switched"),
    [
        (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 101, True),
        (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 200, False),
        (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400, False),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 200, True),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 204, True),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 101, False),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 403, False),
    ],
)
def test_only_a_real_switch_ends_scanning(opening, status, switched):
    for rewrite in (False, True):
        scanner = RequestScanner("127.0.0.2", rewrite=rewrite)
        out, heads = scanner.feed(opening + FORGED)
        assert len(heads) == 1 and scanner.state == SWITCH
        assert out.startswith(opening.split(b"\r\n")[0]) and b"6.6.6.6" not in out
        out, heads = scanner.decide(status)
        if switched:
            assert scanner.tunnel and out == FORGED and heads == []
        else:
            assert not scanner.tunnel and first_lines(heads) == [b"GET /x HTTP/1.1"]
            if rewrite:
                assert b"X-Forwarded-For: 6.6.6.6, 127.0.0.2\r\n" in out
                assert b"https" not in out


def test_upgrade_after_the_first_request_does_not_switch():
    scanner = RequestScanner()
    _, heads = scanner.feed(b"GET / HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"
                            + FORGED)
    assert len(heads) == 3 and scanner.state == HEAD


def test_a_switching_request_with_a_body_switches_after_it():
    scanner = RequestScanner()
    out, heads = scanner.feed(b"POST / HTTP/1.1\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabc"
                              b"RAW")
    assert out.endswith(b"abc") and scanner.state == SWITCH
    assert scanner.decide(101) == (b"RAW", [])


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        (b"Content-Length: 1x\r\n", "bad_content_length"),
        (b"Content-Length: -1\r\n", "bad_content_length"),
        (b"Content-Length:\r\n", "bad_content_length"),
        (b"Content-Length: 3\r\nContent-Length: 4\r\n", "ambiguous_length"),
        (b"Content-Length: 3, 4\r\n", "ambiguous_length"),
        (b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "ambiguous_length"),
        (b"Transfer-Encoding: gzip\r\n", "bad_transfer_encoding"),
        (b"Transfer-Encoding: chunked, gzip\r\n", "bad_transfer_encoding"),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "bad_transfer_encoding"),
        (b"X-Forwarded-For : 6.6.6.6\r\n", "bad_header"),
        (b"A: b\r\n X-Forwarded-For: 6.6.6.6\r\n", "bad_header"),
        (b"A: b\rX-Forwarded-For: 6.6.6.6\r\n", "bad_header"),
        (b"no colon\r\n", "bad_header"),
    ],
)
def test_heads_that_cannot_be_framed_are_refused(headers, name):
    for rewrite in (False, True):
        scanner = RequestScanner("127.0.0.2", rewrite=rewrite)
        first = b"GET /1 HTTP/1.1\r\n\r\n"
        out, heads = scanner.feed(first + b"POST /2 HTTP/1.1\r\n" + headers + b"\r\n" + FORGED)
        assert scanner.state == REFUSED and scanner.refusal is not None
        assert scanner.refusal.name == name and scanner.refusal.status == 400
        assert first_lines(heads) == [b"GET /1 HTTP/1.1"]
        assert out.startswith(b"GET /1 ") and b"POST" not in out and b"6.6.6.6" not in out
        assert scanner.feed(FORGED) == (b"", [])


def test_duplicate_equal_content_lengths_frame_the_body():
    scanner = RequestScanner()
    _, heads = scanner.feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"
                            b"GETGET / HTTP/1.1\r\n\r\n")
    assert first_lines(heads) == [b"POST / HTTP/1.1", b"GET / HTTP/1.1"]


def test_bad_chunk_size_is_refused():
    scanner = RequestScanner()
    scanner.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert scanner.refusal is not None and scanner.refusal.name == "bad_chunk"


def test_under_rewrite_not_http_is_refused_but_logged_as_a_tunnel_without():
    data = b"EHLO mail.example\r\n"
    assert RequestScanner().feed(data) == (data, [data])
    scanner = RequestScanner(rewrite=True)
    assert scanner.feed(data) == (b"", [])
    assert scanner.refusal is not None and scanner.refusal.name == "bad_request_line"


@pytest.mark.parametrize("rewrite", [False, True])
def test_a_70k_head_in_two_writes_is_refused_431(rewrite):
    scanner = RequestScanner("127.0.0.2", rewrite=rewrite)
    head = b"GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Pad: " + b"a" * 70000 + b"\r\n\r\n"
    out1, heads1 = scanner.feed(head[:40000])
    out2, heads2 = scanner.feed(head[40000:])
    assert heads1 == heads2 == []
    assert scanner.refusal is not None and scanner.refusal.status == 431
    if rewrite:
        assert out1 == out2 == b""


def test_two_xff_headers_the_real_client_ends_the_last():
    scanner = RequestScanner("127.0.0.2", rewrite=True)
    out, _ = scanner.feed(b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nA: b\r\n"
                          b"x-forwarded-for: 6.6.6.6\r\n\r\n")
    assert out == (b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nA: b\r\n"
                   b"x-forwarded-for: 6.6.6.6, 127.0.0.2\r\nX-Forwarded-Proto: http\r\n\r\n")


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        ([b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], 101),
        ([b"HTTP/1.1 1", b"01 Switching\r\nUpgrade: websocket\r\n\r\n"], 101),
        ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"], 200),
        ([b"HTTP/1.1 103 Early\r\nLink: x\r\n", b"\r\nHTTP/1.1 404 No\r\n"], 404),
        ([b"SSH-2.0\r\n"], 0),
        ([b"HTTP/1.1 20"], None),
    ],
)
def test_status_watch(chunks, status):
    watch = StatusWatch()
    found = None
    for chunk in chunks:
        found = watch.feed(chunk)
    assert found == status


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
