"""UDP mode (-U): pen's testsuite cases 3, 4 and 5 with Python responders instead of bind."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from .helpers import UdpResponder, free_port, udp_ask

PENCTL = "/usr/bin/penctl"


@pytest.fixture
def responders():
    started: list[UdpResponder] = []

    def start(*names):
        new = [UdpResponder(n) for n in names]
        started.extend(new)
        return new

    yield start
    for r in started:
        r.stop()


def test_udp_tracking(tmp_path, responders, pen):
    """Case 3: a client address keeps its server across flows; another client gets the other."""
    a, b = responders("A", "B")
    port = free_port(socket.SOCK_DGRAM)
    log = tmp_path / "pen.log"
    pen(["-U", "-l", log, port, a.spec, b.spec])
    first = [udp_ask(port, source="127.0.0.2") for _ in range(3)]
    second = [udp_ask(port, source="127.0.0.3") for _ in range(3)]
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0]
    assert first[0] in (b"A", b"B") and second[0] in (b"A", b"B")
    assert len(log.read_bytes().splitlines()) == 6


def test_udp_roundrobin_and_sticky_flows(responders, pen):
    """Case 4: new flows alternate with -r, but one flow stays on its upstream socket."""
    a, b = responders("A", "B")
    port = free_port(socket.SOCK_DGRAM)
    pen(["-U", "-r", port, a.spec, b.spec])
    assert [udp_ask(port) for _ in range(4)] == [b"B", b"A", b"B", b"A"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flow:
        flow.bind(("127.0.0.1", 0))
        answers = {udp_ask(port, sock=flow) for _ in range(4)}
    assert len(answers) == 1


def test_udp_failover_through_blacklisting(tmp_path, responders, pen):
    """Case 5: three -U pens as targets, a -Ur pen over them, servers blacklisted by penctl."""
    (r,) = responders("1.1.1.1")
    targets = [free_port(socket.SOCK_DGRAM) for _ in range(3)]
    for target in targets:
        pen(["-U", target, r.spec])
        assert udp_ask(target) == b"1.1.1.1"
    port, ctl = free_port(socket.SOCK_DGRAM), free_port()
    pen(["-U", "-r", "-u", "root", "-C", f"127.0.0.1:{ctl}", port,
         *[f"127.0.0.1:{t}" for t in targets]])
    penctl = [PENCTL, f"127.0.0.1:{ctl}"]
    assert udp_ask(port) == b"1.1.1.1"
    for server in ("1", "2"):
        subprocess.run([*penctl, "server", server, "blacklist", "30"], check=True)
        assert udp_ask(port) == b"1.1.1.1"
    subprocess.run([*penctl, "server", "0", "blacklist", "30"], check=True)
    assert udp_ask(port, timeout=0.5) == b""
    subprocess.run([*penctl, "server", "0", "blacklist", "0"], check=True)
    assert udp_ask(port) == b"1.1.1.1"


def test_udp_refused_backend_is_blacklisted(responders, pen):
    (a,) = responders("A")
    dead = free_port(socket.SOCK_DGRAM)
    port = free_port(socket.SOCK_DGRAM)
    pen(["-U", "-r", port, f"127.0.0.1:{dead}", a.spec])
    answers = [udp_ask(port, timeout=0.5) for _ in range(4)]
    assert answers.count(b"A") >= 3 and answers[-2:] == [b"A", b"A"]


def test_udp_idle_flows_expire(responders, pen):
    a, b = responders("A", "B")
    port = free_port(socket.SOCK_DGRAM)
    pen(["-U", "-r", "--udp-idle", "1", port, a.spec, b.spec])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flow:
        flow.bind(("127.0.0.1", 0))
        assert udp_ask(port, sock=flow) == b"B"
        time.sleep(2.2)
        assert udp_ask(port, sock=flow) == b"A"
