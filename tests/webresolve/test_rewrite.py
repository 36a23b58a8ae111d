"""Rewriting a line changes only the chosen field."""

from __future__ import annotations

import pytest

from webresolve.rewrite import locate, rewrite

LINE = b'192.0.2.1 - - [10/Oct/2023:13:55:36 -0400] "GET / HTTP/1.1" 200 5\n'
VHOST = b'www.example.com:443 192.0.2.1 - - [10/Oct/2023:13:55:36 -0400] "GET /" 200 5\r\n'


def test_first_field() -> None:
    span = locate(LINE, 1)
    assert span == (0, 9)
    assert rewrite(LINE, span, b"host.example") == LINE.replace(b"192.0.2.1", b"host.example")


def test_second_field_keeps_crlf() -> None:
    span = locate(VHOST, 2)
    assert span is not None and VHOST[span[0] : span[1]] == b"192.0.2.1"
    out = rewrite(VHOST, span, b"h")
    assert out == b'www.example.com:443 h - - [10/Oct/2023:13:55:36 -0400] "GET /" 200 5\r\n'


def test_none_keeps_line_identical() -> None:
    assert rewrite(LINE, (0, 9), None) is LINE


@pytest.mark.parametrize(
    ("line", "field", "span"),
    [
        (b"192.0.2.1\n", 1, (0, 9)),
        (b"192.0.2.1", 1, (0, 9)),
        (b"\n", 1, None),
        (b" x\n", 1, None),
        (b"a b\n", 3, None),
        (b"a  b\n", 2, None),
    ],
)
def test_locate_edges(line: bytes, field: int, span: tuple[int, int] | None) -> None:
    assert locate(line, field) == span
