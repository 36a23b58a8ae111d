"""Options that steer the event loop and debugging: -m, -P, -a with -d -d -d, -Z."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess

import pytest

from pen.app import ProxyState, open_listener
from pen.cli import UsageError, parse_args
from pen.dump import render
from pen.loops import loop_factory
from pen.state import PenState

from .helpers import free_port, http_get


def test_m_chooses_the_asyncio_loop_and_at_least_one(capsys):
    inv = parse_args(["-m", "0", "8080", "h:80"])
    assert inv.settings.multi_accept == 1 and inv.loop == "asyncio"
    assert "at least 1" in capsys.readouterr().err
    assert parse_args(["-P", "-m", "7", "8080", "h:80"]).loop == "poll"
    assert parse_args(["8080", "h:80"]).settings.multi_accept is None
    with pytest.raises(UsageError, match="uvloop"):
        parse_args(["--loop", "uvloop", "-m", "5", "8080", "h:80"])
    with pytest.raises(UsageError, match="--loop"):
        parse_args(["--loop", "fast", "8080", "h:80"])


def test_p_a_and_z_flags():
    inv = parse_args(["-P", "-a", "-Z", "8080", "h:80"])
    assert inv.loop == "poll" and inv.settings.ascii


async def _serving(args: list[str]) -> ProxyState:
    """An in-process pen accepting on its listener, with no grace period at shutdown."""
    inv = parse_args(args)
    inv.settings.grace = 0
    proxy = ProxyState(PenState.from_settings(inv.settings), asyncio.get_running_loop())
    assert inv.settings.listen is not None
    proxy.listen_sock = open_listener(inv.settings.listen, inv.settings.backlog)
    await proxy.serve()
    return proxy


async def _accept_steps(args: list[str], port: int, clients: int) -> list[int]:
    """Connections known to pen after each loop iteration, with ``clients`` already queued."""
    proxy = await _serving(args)
    assert proxy.listen_sock is not None
    assert proxy.listen_sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    queued = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(clients)]
    seen = []
    for _ in range(4 * clients):
        seen.append(len(proxy.conns))
        await asyncio.sleep(0)
    for sock in queued:
        sock.close()
    await proxy.shutdown()
    return seen


@pytest.mark.parametrize("accepts", [1, 2, None])
def test_m_caps_accepts_per_readiness_event(backends, accepts):
    (a,) = backends("A")
    port = free_port()
    args = ["-m", str(accepts)] if accepts else ["--loop", "asyncio"]
    with asyncio.Runner(loop_factory=loop_factory("asyncio")) as runner:
        seen = runner.run(_accept_steps([*args, str(port), a.spec], port, 6))
    steps = [after - before for before, after in itertools.pairwise(seen)]
    assert seen[-1] == 6
    assert max(steps) == (accepts or 6)


def _end_seen(client: socket.socket) -> bool:
    """Whether pen's end of ``client`` is closed: EOF or reset, not a wait."""
    client.settimeout(5)
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        client.close()


@pytest.mark.parametrize("turns", range(5))
def test_shutdown_closes_connections_accepted_while_it_runs(backends, turns):
    """Shutdown a few loop turns after clients queued: accepts under way still bring
    connections in, and every one is closed before shutdown returns (the loop is then
    blocked, so nothing later could close them)."""
    (a,) = backends("A")
    port = free_port()

    async def scenario() -> list[bool]:
        proxy = await _serving(["--loop", "asyncio", str(port), a.spec])
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(6)]
        for _ in range(turns):
            await asyncio.sleep(0)
        await proxy.shutdown()
        return [_end_seen(client) for client in clients]

    with asyncio.Runner(loop_factory=loop_factory("asyncio")) as runner:
        assert runner.run(scenario()) == [True] * 6


def _event_fds(pid: int) -> set[str]:
    links = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return links


def test_p_serves_without_epoll(backends, pen):
    (a,) = backends("A")
    polled, default = free_port(), free_port()
    with_poll = pen(["-P", polled, a.spec])
    plain = pen(["--loop", "asyncio", default, a.spec])
    assert http_get(polled) == b"A" and http_get(default) == b"A"
    assert "anon_inode:[eventpoll]" not in _event_fds(with_poll.pid)
    assert "anon_inode:[eventpoll]" in _event_fds(plain.pid)


def _stderr_after_term(proc) -> str:
    proc.signal(signal.SIGTERM)
    assert proc.proc is not None and proc.proc.stderr is not None
    proc.proc.wait(15)
    return proc.proc.stderr.read().decode()


def _dumped(pen, backend, extra: list[str]) -> str:
    port = free_port()
    proc = pen(["-d", "-d", "-d", *extra, port, backend.spec])
    assert http_get(port, "/dumped") == b"A"
    return _stderr_after_term(proc)


def test_traffic_dumps_in_hex_and_with_a_as_text(backends, pen):
    (a,) = backends("A")
    hexed = _dumped(pen, a, [])
    assert "client sent" in hexed and "server sent" in hexed
    assert "47 45 54 20 2f 64 75 6d 70 65 64" in hexed  # "GET /dumped"
    texted = _dumped(pen, a, ["-a"])
    assert "GET /dumped HTTP/1.0" in texted and "HTTP/1.1 200 OK" in texted


def test_render_marks_unprintable_bytes():
    assert render(b"GET /\r\n\x00\xff", text=True) == "GET /.\n.."
    assert render(bytes(range(20)), text=False).splitlines() == [
        bytes(range(16)).hex(" "), bytes(range(16, 20)).hex(" ")]


def test_quiet_levels_do_not_dump(backends, pen):
    (a,) = backends("A")
    port = free_port()
    proc = pen(["-d", "-d", port, a.spec])
    assert http_get(port, "/quiet") == b"A"
    assert "client sent" not in _stderr_after_term(proc)


def test_debug_and_ascii_commands_start_dumps_at_run_time(backends, pen):
    (a,) = backends("A")
    port, ctl = free_port(), free_port()
    proc = pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", port, a.spec])
    assert http_get(port, "/before") == b"A"
    for command in (["debug", "3"], ["ascii"]):
        subprocess.run(["/usr/bin/penctl", f"127.0.0.1:{ctl}", *command], check=True,
                       capture_output=True, timeout=10)
    assert http_get(port, "/after") == b"A"
    err = _stderr_after_term(proc)
    assert "GET /after HTTP/1.0" in err and "/before" not in err
