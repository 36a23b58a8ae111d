"""Which fields are addresses, and which PTR names may be written into a log."""

from __future__ import annotations

import pytest

from webresolve.names import canonical_address, is_ipv6, valid_hostname


@pytest.mark.parametrize(
    ("field", "address"),
    [
        (b"192.0.2.1", "192.0.2.1"),
        (b"2001:db8::1", "2001:db8::1"),
        (b"2001:DB8:0:0::1", "2001:db8::1"),
        (b"::ffff:192.0.2.1", "192.0.2.1"),
        (b"::FFFF:c000:0201", "192.0.2.1"),
        (b"::1", "::1"),
        (b"www.example.com", None),
        (b"-", None),
        (b"", None),
        (b"192.0.2.256", None),
        (b"192.0.2.1:80", None),
        (b"fe80::1%eth0", None),
        (b"\xff\xfe", None),
        (b"1" * 60, None),
    ],
)
def test_canonical_address(field: bytes, address: str | None) -> None:
    assert canonical_address(field) == address


def test_is_ipv6() -> None:
    assert is_ipv6("2001:db8::1") and not is_ipv6("192.0.2.1")


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("host.example.com", True),
        ("host.example.com.", True),
        ("a-b.c0", True),
        ("localhost", True),
        ("x" * 63 + ".com", True),
        ("x" * 64 + ".com", False),
        (".".join(["abcdefghi"] * 25) + ".com", True),
        (".".join(["abcdefghi"] * 26), False),
        ("", False),
        (".", False),
        ("a..b", False),
        ("-a.com", False),
        ("a-.com", False),
        ("under_score.com", False),
        ("sp ace.com", False),
        ('quo"te.com', False),
        ("new\nline.com", False),
        ("tab\t.com", False),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("ünïcode.com", False),
        ("a.b\x00c", False),
        ("3com.com", True),
        ("1.host.example", True),
        ("0x7f.example", True),
        ("host.123", False),
        ("127.1", False),
        ("10.0.0.01", False),
        ("2130706433", False),
        ("0x7f.1", False),
        ("1.2.3.4.5", False),
        ("0x7f", False),
        ("0x7f.0x0.0x0.0x1", False),
        ("0X7F.0.1", False),
    ],
)
def test_valid_hostname(name: str, valid: bool) -> None:
    assert valid_hostname(name) is valid
