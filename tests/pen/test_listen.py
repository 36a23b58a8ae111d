"""``listen ADDR`` end to end: the listener moves at run time, through Debian's penctl and
ours; open connections go on; a bad or busy address answers an error line and the old
listener goes on serving (Debian's pen exits); -U refuses; -F ``listen`` at startup and HUP."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from .helpers import UdpResponder, free_port, http_get, https_get, udp_ask

DEBIAN_PEN = "/usr/bin/pen"
DEBIAN_PENCTL = ["/usr/bin/penctl"]
OUR_PENCTL = [sys.executable, "-c", "from pen.penctl import main; main()"]


def ask(ctl: int, line: str, client: list[str] = DEBIAN_PENCTL) -> str:
    """The reply to one command line through ``client``."""
    run = subprocess.run([*client, f"127.0.0.1:{ctl}", *line.split(" ")],
                         capture_output=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout.decode()


def refused(port: int) -> bool:
    """Nothing listens on ``port`` (connect refused)."""
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def listener_inode(port: int) -> str:
    """The inode of the socket listening on 127.0.0.1:``port`` ("" if none)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == local and fields[3] == "0A":
                return fields[9]
    return ""


def keepalive_get(sock: socket.socket) -> bytes:
    """One HTTP/1.1 request on an open connection; the body (the backend's name)."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 1:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("command", [None, [DEBIAN_PEN]], ids=["ours", "debian"])
def test_listen_moves_the_listener_with_the_same_reply_as_pen(pen, backends, command):
    (a,) = backends("A")
    old, new, ctl = free_port(), free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{old}", a.spec], command=command)
    with socket.create_connection(("127.0.0.1", old), timeout=10) as held:
        assert keepalive_get(held) == b"A"
        assert ask(ctl, "listen") == f"127.0.0.1:{old}\n"
        assert ask(ctl, f"listen 127.0.0.1:{new}") == f"127.0.0.1:{new}\n"
        assert ask(ctl, "listen", OUR_PENCTL) == f"127.0.0.1:{new}\n"
        assert http_get(new) == b"A"
        assert refused(old)
        assert keepalive_get(held) == b"A"  # the open connection goes on


def test_a_bad_or_busy_address_answers_an_error_and_the_old_listener_serves(tmp_path, pen,
                                                                            backends):
    (a,) = backends("A")
    old, new, ctl = free_port(), free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: pen's listener cannot share it
        busy.listen()
        taken = busy.getsockname()[1]
        pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{old}", a.spec])
        assert ask(ctl, f"listen 127.0.0.1:{taken}") == (
            f"listen: cannot listen on 127.0.0.1:{taken}: Address already in use\n")
        assert ask(ctl, "listen 192.0.2.1:80", OUR_PENCTL) == (
            "listen: cannot listen on 192.0.2.1:80: Cannot assign requested address\n")
        assert ask(ctl, "listen 127.0.0.1:nosuchservice") == (
            "listen: invalid listen address 'nosuchservice': unknown service name\n")
        assert ask(ctl, "listen") == f"127.0.0.1:{old}\n"
        assert http_get(old) == b"A"
        # and the listener still moves afterwards, to a port or to a Unix socket
        assert ask(ctl, f"listen 127.0.0.1:{new}", OUR_PENCTL) == f"127.0.0.1:{new}\n"
        assert http_get(new) == b"A" and refused(old)
        path = str(tmp_path / "pen.sock")
        assert ask(ctl, f"listen {path}") == f"{path}\n"
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(10)
            unix.connect(path)
            assert keepalive_get(unix) == b"A"
        assert refused(new)


def test_the_moved_listener_keeps_tls(pen, backends, certificate):  # noqa: F811
    (a,) = backends("A")
    cert, key = certificate
    old, new, ctl = free_port(), free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", "-E", cert, "-K", key, f"127.0.0.1:{old}",
         a.spec])
    assert https_get(old) == b"A"
    assert ask(ctl, f"listen 127.0.0.1:{new}") == f"127.0.0.1:{new}\n"
    assert https_get(new) == b"A" and refused(old)


def test_a_listener_paused_by_x_moves_and_serves_once_a_slot_frees(pen, backends):
    """With -x 1 full, accepting is paused: a client of the new address waits in its kernel
    backlog and is served when the open connection ends."""
    (a,) = backends("A")
    old, new, ctl = free_port(), free_port(), free_port()
    pen(["-u", "root", "-x", "1", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{old}", a.spec])
    held = socket.create_connection(("127.0.0.1", old), timeout=10)
    with held:
        assert keepalive_get(held) == b"A"
        assert ask(ctl, f"listen 127.0.0.1:{new}") == f"127.0.0.1:{new}\n"
        waiting = socket.create_connection(("127.0.0.1", new), timeout=10)  # the backlog
    with waiting:
        assert keepalive_get(waiting) == b"A"
    assert refused(old)


@pytest.mark.parametrize("command", [None, [DEBIAN_PEN]], ids=["ours", "debian"])
def test_conn_max_grown_at_run_time_serves_a_waiting_client_at_once(pen, backends, command):
    """With -x 1 full, a second client waits; ``conn_max 2`` lets it in while the first one
    is still open (pen's loop looks at the limit each turn; ours did at the next close)."""
    (a,) = backends("A")
    port, ctl = free_port(), free_port()
    pen(["-u", "root", "-x", "1", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{port}", a.spec],
        command=command)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        assert keepalive_get(held) == b"A"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as waiting:
            assert ask(ctl, "conn_max 2") == "2\n"
            assert keepalive_get(waiting) == b"A"


def test_debian_pen_exits_on_a_busy_address(pen, backends):
    """What ours does differently, measured: pen 0.34.1 prints "can't bind local address",
    answers nothing and exits 1."""
    (a,) = backends("A")
    old, ctl = free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{old}", a.spec],
                   command=[DEBIAN_PEN])
        assert ask(ctl, f"listen 127.0.0.1:{busy.getsockname()[1]}") == ""
        assert proc.proc is not None and proc.proc.wait(15) == 1


def test_udp_listener_is_not_moved(pen):
    responder = UdpResponder("U")
    try:
        port, ctl = free_port(socket.SOCK_DGRAM), free_port()
        pen(["-u", "root", "-U", "-C", f"127.0.0.1:{ctl}", f"127.0.0.1:{port}", responder.spec])
        assert ask(ctl, f"listen 127.0.0.1:{free_port(socket.SOCK_DGRAM)}") == (
            "listen: a UDP listener cannot be moved at runtime; restart pen\n")
        assert ask(ctl, "listen") == f"127.0.0.1:{port}\n"
        assert udp_ask(port, timeout=5) == b"U"
    finally:
        responder.stop()


def test_listen_in_the_f_file_opens_there_and_hup_leaves_it(tmp_path, pen, backends):
    (a,) = backends("A")
    argv_port, cfg_port, ctl = free_port(), free_port(), free_port()
    cfg = tmp_path / "pen.cfg"
    cfg.write_text(f"listen 127.0.0.1:{cfg_port}\nblacklist 19\n")
    proc = pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", "-F", cfg, f"127.0.0.1:{argv_port}",
                a.spec])
    assert http_get(cfg_port) == b"A" and refused(argv_port)
    before = listener_inode(cfg_port)
    assert before and ask(ctl, "blacklist 5") == "5\n"
    proc.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while ask(ctl, "blacklist") != "19\n" and time.monotonic() < deadline:
        time.sleep(0.05)  # the HUP re-ran the file
    assert ask(ctl, "blacklist") == "19\n"
    assert listener_inode(cfg_port) == before  # the same socket: re-reading moved nothing
    assert http_get(cfg_port) == b"A"
