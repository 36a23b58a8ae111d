"""Access-log field finding on the lines real servers write (table-driven, no I/O)."""

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mergelogs.accesslog import (
    AccessParser,
    apache_escape,
    field_span,
    format_stamp,
    nginx_escape,
    request_field,
    stamp_epoch,
    stamp_offset,
    unescape,
)

T0 = calendar.timegm((2011, 9, 18, 23, 18, 28))  # 18/Sep/2011:19:18:28 -0400

CASES = [
    # (name, line, client, epoch, request)
    ("common", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 -\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("combined", b'1.2.3.4 - frank [18/Sep/2011:19:18:28 -0400] "GET /a HTTP/1.0" 200 2326 '
     b'"http://x/" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n', b"1.2.3.4", T0, b"GET /a HTTP/1.0"),
    ("debian %O", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 512 "-" "-"\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("vhost_combined", b'www.example.com:443 5.6.7.8 - - [18/Sep/2011:19:18:28 -0400] '
     b'"GET / HTTP/1.1" 200 512 "-" "-"\n', b"5.6.7.8", T0, b"GET / HTTP/1.1"),
    ("vhost ipv6 client", b'www.example.com:80 2001:db8::1 - - [18/Sep/2011:19:18:28 -0400] '
     b'"GET / HTTP/1.1" 200 1\n', b"2001:db8::1", T0, b"GET / HTTP/1.1"),
    ("ipv6 client ending in :80", b'2001:db8::80 - - [18/Sep/2011:19:18:28 -0400] '
     b'"GET / HTTP/1.1" 200 1\n', b"2001:db8::80", T0, b"GET / HTTP/1.1"),
    ("v4-mapped", b'::ffff:1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
     b"::ffff:1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("nginx escapes", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET /caf\\xC3\\xA9\\x22 '
     b'HTTP/1.1" 200 0 "-" "a\\x22b"\n', b"1.2.3.4", T0, b"GET /caf\\xC3\\xA9\\x22 HTTP/1.1"),
    ("dash request 408", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "-" 408 - "-" "-"\n',
     b"1.2.3.4", T0, b"-"),
    ("empty request", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "" 400 0 "-" "-"\n',
     b"1.2.3.4", T0, b""),
    ("tls junk", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "\\x16\\x03\\x01" 400 0\n',
     b"1.2.3.4", T0, b"\\x16\\x03\\x01"),
    ("quotes in ua", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET /\\"q\\" HTTP/1.1" 200 1 '
     b'"-" "Mozilla/5.0 \\"x\\""\n', b"1.2.3.4", T0, b'GET /\\"q\\" HTTP/1.1'),
    ("backslash before quote", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET /a\\\\" 200 1\n',
     b"1.2.3.4", T0, b"GET /a\\\\"),
    ("user with space",
     b'1.2.3.4 - john smith [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("empty user", b'1.2.3.4 - "" [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("crlf", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\r\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("hostname client",
     b'host.example.org - - [18/Sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
     b"host.example.org", T0, b"GET / HTTP/1.1"),
    ("+0530", b'1.2.3.4 - - [19/Sep/2011:04:48:28 +0530] "GET / HTTP/1.1" 200 1\n',
     b"1.2.3.4", T0, b"GET / HTTP/1.1"),
    ("30 KB", b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET /' + b"x" * 30000
     + b' HTTP/1.1" 200 1\n', b"1.2.3.4", T0, b"GET /" + b"x" * 30000 + b" HTTP/1.1"),
    ("invalid utf-8 raw",
     b'1.2.3.4 - - [18/Sep/2011:19:18:28 -0400] "GET /\xff\xfe HTTP/1.0" 200 1\n',
     b"1.2.3.4", T0, b"GET /\xff\xfe HTTP/1.0"),
]


@pytest.mark.parametrize(("name", "line", "client", "epoch", "req"), CASES,
                         ids=[c[0] for c in CASES])
def test_parse(name, line, client, epoch, req):
    parsed = AccessParser().parse(line)
    assert parsed.raw is line
    assert parsed.client == client
    assert parsed.epoch == epoch
    assert parsed.request == req
    assert parsed.with_client(b"9.9.9.9").replace(b"9.9.9.9", client, 1) == line


@pytest.mark.parametrize(
    "line",
    [
        b"\n",
        b"garbage\n",
        b'1.2.3.4 - - [31/Feb/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
        b'1.2.3.4 - - [18/sep/2011:19:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
        b'1.2.3.4 - - [18/Sep/2011:24:18:28 -0400] "GET / HTTP/1.1" 200 1\n',
        b'1.2.3.4 - - [31/Jan/2015:14:29:44 ] "GET / HTTP/1.1" 200 1\n',
        b"# W3C comment\n",
    ],
)
def test_unparsable_lines_have_no_epoch(line):
    parsed = AccessParser().parse(line)
    assert parsed.epoch is None
    assert parsed.raw is line


@pytest.mark.parametrize(
    ("escaped", "raw"),
    [
        (b"GET /caf\\xc3\\xa9", b"GET /caf\xc3\xa9"),
        (b"GET /caf\\xC3\\xA9", b"GET /caf\xc3\xa9"),
        (b'a\\"b\\\\c', b'a"b\\c'),
        (b"a\\x22b\\x5Cc", b'a"b\\c'),
        (b"\\t\\n\\r\\b\\v", b"\t\n\r\b\v"),
        (b"no escapes", b"no escapes"),
    ],
)
def test_unescape(escaped, raw):
    assert unescape(escaped) == raw


def test_request_field_without_closing_quote():
    assert request_field(b'x [s] "GET /unterminated', 0) is None


def test_field_span():
    line = b"a bb ccc\n"
    assert field_span(line, 1) == (0, 1)
    assert field_span(line, 2) == (2, 4)
    assert field_span(line, 3) == (5, 8)
    assert field_span(line, 4) is None


@given(st.integers(0, 2**33), st.sampled_from([0, 3600, -18000, 19800, -34200, 50400]))
def test_format_stamp_round_trip(epoch, offset):
    stamp = format_stamp(epoch, offset)
    assert len(stamp) == 26
    assert stamp_epoch(stamp) == epoch
    assert stamp_offset(stamp) == offset


def test_dst_change_instants():
    # The hour repeats at the end of DST; offsets keep the instants apart and ordered.
    before = stamp_epoch(b"07/Nov/2027:01:30:00 -0400")
    after = stamp_epoch(b"07/Nov/2027:01:10:00 -0500")
    assert after - before == 40 * 60


@given(st.binary(max_size=200))
def test_escaping_is_printable_and_undone(data):
    for escape in (apache_escape, nginx_escape):
        escaped = escape(data)
        assert all(0x20 <= b < 0x7F for b in escaped)
        assert b'"' not in escaped.replace(b'\\"', b"").replace(b"\\\\", b"")
        assert unescape(escaped) == data


def test_escaping_matches_the_servers():
    assert apache_escape(b'GET /caf\xc3\xa9"\\') == b'GET /caf\\xc3\\xa9\\"\\\\'
    assert nginx_escape(b'GET /caf\xc3\xa9"\\') == b"GET /caf\\xC3\\xA9\\x22\\x5C"
