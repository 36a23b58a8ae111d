"""--hosts files."""

from __future__ import annotations

import pytest

from webresolve.errors import HostsFileError
from webresolve.hostsfile import parse_hosts


def test_parse_hosts() -> None:
    text = [
        "# comment\n",
        "\n",
        "192.0.2.1   one.example  alias   # trailing\n",
        "192.0.2.1   second.example\n",
        "2001:db8::1 six.example.\n",
        "::ffff:192.0.2.9 mapped.example\n",
    ]
    assert parse_hosts(text) == {
        "192.0.2.1": "one.example",
        "2001:db8::1": "six.example.",
        "192.0.2.9": "mapped.example",
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("notanip host\n", "not an IP address"),
        ("192.0.2.1\n", "no name"),
    ],
)
def test_bad_lines(line: str, reason: str) -> None:
    with pytest.raises(HostsFileError, match=reason) as info:
        parse_hosts(["# ok\n", line], "hosts.txt")
    assert str(info.value).startswith("hosts.txt:2: ")
    assert isinstance(info.value, ValueError)


def test_names_are_kept_for_the_rule_to_judge() -> None:
    """A name the host-name rule refuses is not an error of the file: it counts as bogus
    when used, like a hostile PTR (tests/webresolve/test_engine.py)."""
    assert parse_hosts(["192.0.2.1 bad_name\n", "192.0.2.2 127.1\n"]) == {
        "192.0.2.1": "bad_name",
        "192.0.2.2": "127.1",
    }
