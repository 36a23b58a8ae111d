"""Spec parsing: backends, LISTEN addresses (no sockets)."""

import pytest

from pen.config import ListenSpec, ServerSpec, parse_listen, parse_server
from pen.errors import SpecError


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("host1", ServerSpec("host1", 80)),
        ("host1:8080", ServerSpec("host1", 8080)),
        ("10.0.0.1:81:5:7:2:1", ServerSpec("10.0.0.1", 81, 5, 7, 2, 1)),
        ("10.0.0.1:81:5", ServerSpec("10.0.0.1", 81, 5)),
        ("[::1]", ServerSpec("::1", 80)),
        ("[::1]:100:0:0:101", ServerSpec("::1", 100, 0, 0, 101)),
        ("otherhost:pop3", ServerSpec("otherhost", 110)),
        ("/run/app.sock", ServerSpec("/run/app.sock", 0)),
    ],
)
def test_parse_server(text, spec):
    assert parse_server(text, 80) == spec


@pytest.mark.parametrize(
    "text", ["", ":80", "h:notaport", "h:70000", "h:1:x", "h:1:2:3:4:5:6", "[::1", "[::1]x"]
)
def test_parse_server_rejects(text):
    with pytest.raises(SpecError) as info:
        parse_server(text, 80)
    assert isinstance(info.value, ValueError)
    assert "invalid server" in str(info.value)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("8080", ListenSpec("0.0.0.0", 8080)),
        ("127.0.0.1:8080", ListenSpec("127.0.0.1", 8080)),
        (":::10000", ListenSpec("::", 10000)),
        ("[::]:10000", ListenSpec("::", 10000)),
        ("[::1]:10000", ListenSpec("::1", 10000)),
        ("pop3", ListenSpec("0.0.0.0", 110)),
        ("lbhost:http", ListenSpec("lbhost", 80)),
        ("/tmp/pen.sock", ListenSpec("", 0, "/tmp/pen.sock")),
    ],
)
def test_parse_listen(text, spec):
    assert parse_listen(text) == spec


@pytest.mark.parametrize("text", ["", "0", "65536", "host:", "nosuchservice"])
def test_parse_listen_rejects(text):
    with pytest.raises(SpecError):
        parse_listen(text)


def test_udp_service_names_use_udp():
    assert parse_listen("domain", udp=True).port == 53


def test_listen_str_round_trips():
    assert str(ListenSpec("::1", 5)) == "[::1]:5"
    assert str(ListenSpec("127.0.0.1", 5)) == "127.0.0.1:5"
