"""The TCP balancer end to end on loopback: selection, failover, limits, logging, signals."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from pen.penlog import parse_line

from .helpers import PEN, Backend, Pen, free_port, http_get, read_all

PENCTL = "/usr/bin/penctl"


def clients(n, first=2):
    return [f"127.0.0.{i}" for i in range(first, first + n)]


def keepalive(port, paths, source="127.0.0.1"):
    """Several HTTP/1.1 requests on one connection, pipelined in one write; the bodies."""
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as sock:
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p.encode() for p in paths))
        data = b""
        while data.count(b"HTTP/1.1 200") < len(paths) or not data.endswith(b"A") and \
                not data.endswith(b"B"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_http_recipe_tracking_and_pen_log(tmp_path, backends, pen):
    """``pen -l pen.log -p pen.pid LISTEN host1 host2``: clients stick, every request logged."""
    a, b = backends("A", "B")
    port = free_port()
    log = tmp_path / "pen.log"
    pen(["-l", log, port, a.spec, b.spec])
    seen = {}
    for source in clients(4):
        bodies = {http_get(port, f"/p?c={source}", source=source) for _ in range(3)}
        assert len(bodies) == 1 and bodies <= {b"A", b"B"}
        seen[source] = bodies.pop()
    assert set(seen.values()) == {b"A", b"B"}
    data = keepalive(port, ["/k1", "/k2", "/k3"], source="127.0.0.9")
    assert data.count(b"HTTP/1.1 200 OK") == 3
    records = [parse_line(line) for line in log.read_bytes().splitlines()]
    assert len(records) == 15
    assert [r.request for r in records[-3:]] == [b"GET /k1 HTTP/1.1", b"GET /k2 HTTP/1.1",
                                                 b"GET /k3 HTTP/1.1"]
    assert {r.client for r in records} == set(clients(4)) | {"127.0.0.9"}
    assert all(r.server == "127.0.0.1" and abs(r.epoch - time.time()) < 60 for r in records)
    assert sum(len(x.log_path.read_bytes().splitlines()) for x in (a, b)) == 15


def test_roundrobin_alternates_starting_with_server_1(backends, pen):
    a, b = backends("A", "B")
    port = free_port()
    pen(["-r", port, a.spec, b.spec])
    assert [http_get(port) for _ in range(4)] == [b"B", b"A", b"B", b"A"]


def test_hash_matches_c_pen(tmp_path, backends, pen):
    """-h sends each client to the same backend as Debian's pen (a mixed fleet agrees)."""
    servers = backends("A", "B", "C")
    specs = [s.spec for s in servers]
    sources = clients(8)
    ours_port, c_port = free_port(), free_port()
    pen(["-h", ours_port, *specs])
    c_pen = Pen(tmp_path, ["-h", str(c_port), *specs], command=["/usr/bin/pen"]).start()
    try:
        ours = [http_get(ours_port, source=s) for s in sources]
        theirs = [http_get(c_port, source=s) for s in sources]
    finally:
        c_pen.stop()
    assert ours == theirs
    assert len(set(ours)) > 1


def test_failover_blacklists_a_dead_server(backends, pen):
    (a,) = backends("A")
    dead = free_port()
    port = free_port()
    pen(["-r", "-b", "30", port, f"127.0.0.1:{dead}", a.spec])
    assert [http_get(port) for _ in range(6)] == [b"A"] * 6
    assert a.accepted == 6


def test_stubborn_does_not_fail_over(backends, pen):
    (a,) = backends("A")
    dead = free_port()
    port = free_port()
    pen(["-s", "-r", port, a.spec, f"127.0.0.1:{dead}"])
    assert http_get(port) == b""
    assert http_get(port) == b"A"


def test_connect_timeout_blacklists_and_fails_over(backends, pen):
    """A backend whose accept queue is full never completes the connect: -t then failover."""
    (a,) = backends("A")
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(full.getsockname())
        fillers.append(s)
    try:
        port = free_port()
        pen(["-r", "-t", "1", port, a.spec, f"127.0.0.1:{full.getsockname()[1]}"])
        started = time.monotonic()
        assert http_get(port, timeout=10) == b"A"
        assert [http_get(port, timeout=10) for _ in range(3)] == [b"A"] * 3
        assert time.monotonic() - started < 8
    finally:
        for s in fillers:
            s.close()
        full.close()


def test_backend_killed_mid_run_no_client_sees_an_error(backends, pen):
    a, b = backends("A", "B")
    port = free_port()
    pen([port, a.spec, b.spec])
    sources = clients(6)
    first = {s: http_get(port, source=s) for s in sources}
    assert set(first.values()) == {b"A", b"B"}
    b.stop()
    after = [http_get(port, source=s) for s in sources for _ in range(2)]
    assert after == [b"A"] * 12


def test_emergency_server(backends, pen):
    """testsuite case 6 through the stock penctl."""
    a, b, e = backends("100", "101", "Emergency")
    port, ctl = free_port(), free_port()
    pen(["-r", "-u", "root", "-C", f"127.0.0.1:{ctl}", "-e", e.spec, port, a.spec,
         f"{b.spec}:0:0:101"])
    penctl = [PENCTL, f"127.0.0.1:{ctl}"]
    assert len({http_get(port), http_get(port)}) == 2
    subprocess.run([*penctl, "server", "0", "blacklist", "100"], check=True)
    assert http_get(port) == http_get(port) == b"101"
    subprocess.run([*penctl, "server", "1", "blacklist", "100"], check=True)
    assert http_get(port) == b"Emergency"
    subprocess.run([*penctl, "server", "0", "blacklist", "0"], check=True)
    assert http_get(port) == http_get(port) == b"100"
    subprocess.run([*penctl, "server", "1", "blacklist", "0"], check=True)
    assert len({http_get(port), http_get(port)}) == 2


def test_abuse_server_and_acls(backends, pen):
    """testsuite case 7, with 127.0.0.2 as the second client address."""
    a, abuse = backends("100", "Abuse")
    port, ctl = free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", "-B", abuse.spec, port, a.spec])
    penctl = [PENCTL, f"127.0.0.1:{ctl}"]
    ip1, ip2 = "127.0.0.1", "127.0.0.2"
    subprocess.run([*penctl, "acl", "1", "permit", ip1], check=True)
    subprocess.run([*penctl, "client_acl", "1"], check=True, capture_output=True)
    assert http_get(port, source=ip1) == b"100"
    assert http_get(port, source=ip2) == b"Abuse"
    subprocess.run([*penctl, "client_acl", "0"], check=True, capture_output=True)
    assert http_get(port, source="127.0.0.3") == b"100"
    subprocess.run([*penctl, "server", "0", "acl", "1"], check=True)
    assert http_get(port, source=ip1) == b"100"
    assert http_get(port, source="127.0.0.4") == b""


def test_penctl_reads_our_replies(backends, pen):
    a, b = backends("A", "B")
    port, ctl = free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", port, a.spec, b.spec])
    out = subprocess.run([PENCTL, f"127.0.0.1:{ctl}", "servers"], check=True,
                         capture_output=True, text=True).stdout
    assert out.splitlines() == [
        f"0 addr 127.0.0.1 port {a.port} conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0",
        f"1 addr 127.0.0.1 port {b.port} conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0",
    ]
    run = subprocess.run([PENCTL, f"127.0.0.1:{ctl}", "exit"], capture_output=True, text=True)
    assert run.stdout == "Exit is not enabled; restart with -X flag\n"


def test_control_port_refused_for_root_without_user(backends):
    (a,) = backends("A")
    run = subprocess.run([*PEN, "-f", "-C", str(free_port()), str(free_port()), a.spec],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 1
    assert "Won't open control port running as root" in run.stderr


def test_hup_reloads_config_and_reopens_log(tmp_path, backends, pen):
    """testsuite case 11 plus log rotation: mv pen.log pen.log.1; kill -HUP."""
    a, b = backends("100", "101")
    cfg = tmp_path / "autotest.cfg"
    cfg.write_text(f"server 0 address 127.0.0.1 port {a.port}\n")
    log = tmp_path / "pen.log"
    port = free_port()
    proc = pen([port, "-F", cfg, "-l", log, "127.0.0.1:1"])
    assert http_get(port, "/one") == b"100"
    cfg.write_text(f"server 0 address 127.0.0.1 port {b.port}\n")
    log.rename(tmp_path / "pen.log.1")
    proc.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert http_get(port, "/two") == b"101"
    assert b"GET /one" in (tmp_path / "pen.log.1").read_bytes()
    assert b"GET /two" in log.read_bytes() and b"/one" not in log.read_bytes()


def test_pid_file_and_term(tmp_path, backends):
    (a,) = backends("A")
    port = free_port()
    proc = Pen(tmp_path, [str(port), a.spec]).start()
    assert proc.pidfile.read_text() == str(proc.pid)
    assert proc.stop() == 0
    assert not proc.pidfile.exists()


def test_int_stops_cleanly_after_open_connection_finishes(tmp_path, backends):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    proc = Pen(tmp_path, [str(port), echo.spec]).start()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"ping")
    assert sock.recv(10) == b"ping"
    proc.signal(signal.SIGINT)
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    sock.sendall(b"still")
    assert sock.recv(10) == b"still"
    sock.close()
    assert proc.proc.wait(10) == 0
    proc.stop()
    assert not proc.pidfile.exists()


def test_daemon_mode_detaches_and_writes_pid(tmp_path, backends):
    (a,) = backends("A")
    port = free_port()
    proc = Pen(tmp_path, [str(port), a.spec], foreground=False).start()
    try:
        assert proc.proc.wait(10) == 0
        assert proc.pid != proc.proc.pid
        assert http_get(port) == b"A"
    finally:
        proc.stop()
    assert not proc.pidfile.exists()


def test_soft_and_hard_limits(backends, pen):
    """maxc=1 hard=2 on server 0: a returning client may take a 2nd slot, a new one may not."""
    e0, e1 = backends("E0", "E1", mode="echo")
    port = free_port()
    pen([port, f"{e0.spec}:1:2", f"{e1.spec}:1:1"])
    held = []

    def hold(source):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        held.append(s)

    try:
        hold("127.0.0.2")
        assert (e0.accepted, e1.accepted) == (0, 1)
        hold("127.0.0.2")
        assert (e0.accepted, e1.accepted) == (1, 1)
        hold("127.0.0.2")
        assert (e0.accepted, e1.accepted) == (2, 1)
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.3", 0)) as refused:
            assert refused.recv(1) == b""
        assert (e0.accepted, e1.accepted) == (2, 1)
    finally:
        for s in held:
            s.close()


def test_x_limit_queues_in_the_kernel_backlog(backends, pen):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    pen(["-x", "2", port, echo.spec])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        for s in socks[:2]:
            s.sendall(b"a")
            assert s.recv(1) == b"a"
        socks[2].sendall(b"c")
        socks[2].settimeout(0.5)
        with pytest.raises(TimeoutError):
            socks[2].recv(1)
        socks[0].close()
        socks[2].settimeout(5)
        assert socks[2].recv(1) == b"c"
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_x_limit_holds_for_a_burst_of_clients(backends, pen, loop):
    """Clients connecting at once are accepted in one burst (asyncio's loop takes up to the
    backlog per wake-up): those beyond -x wait without an upstream until one closes."""
    (echo,) = backends("E", mode="echo")
    port = free_port()
    pen(["--loop", loop, "-x", "3", port, echo.spec])
    socks = []
    try:
        for _ in range(40):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            socks.append(sock)
        time.sleep(1.0)
        assert echo.accepted <= 3
        for sock in socks:  # each is served in turn, as the ones before it close
            sock.settimeout(10)
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            sock.close()
        assert echo.accepted == 40
    finally:
        for sock in socks:
            sock.close()


def test_half_close_and_large_transfer_with_back_pressure(backends, pen):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    pen([port, echo.spec])
    payload = bytes(range(256)) * 40000
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        def reader():
            time.sleep(0.5)
            while chunk := sock.recv(65536):
                received.extend(chunk)

        thread = threading.Thread(target=reader)
        thread.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        thread.join(20)
    assert bytes(received) == payload


@pytest.mark.timeout(120)
def test_thousand_concurrent_connections(backends, pen):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    pen(["-x", "1100", "-q", "1100", port, echo.spec])
    socks = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                         source_address=(f"127.0.{1 + i % 200}.{2 + i // 200}", 0))
            socks.append(s)
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(socks):
            assert s.recv(16) == b"%d\n" % i
    finally:
        for s in socks:
            s.close()


def test_x_forwarded_for_on_every_request(backends, pen):
    (a,) = backends("A")
    port = free_port()
    pen(["-H", port, a.spec])
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=("127.0.0.7", 0)) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n"
                     b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while data.count(b"200 OK") < 2:
            data += sock.recv(4096)
    heads = a.heads[-2:]
    assert b"X-Forwarded-For: 10.1.1.1, 127.0.0.7\r\nX-Forwarded-Proto: http" in heads[0]
    assert heads[1].endswith(b"X-Forwarded-For: 127.0.0.7\r\nX-Forwarded-Proto: http")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_header(backends, pen, version):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    pen(["--proxy-protocol", version, port, echo.spec])
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=("127.0.0.5", 0)) as sock:
        sock.sendall(b"hi")
        src_port = sock.getsockname()[1]
        data = b""
        while not data.endswith(b"hi"):
            data += sock.recv(4096)
    if version == "v1":
        assert data == b"PROXY TCP4 127.0.0.5 127.0.0.1 %d %d\r\nhi" % (src_port, port)
    else:
        assert data.startswith(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x05")
        assert data.endswith(b"hi") and len(data) == 16 + 12 + 2


def test_unix_listener_logs_empty_client(tmp_path, backends, pen):
    (a,) = backends("A")
    path = tmp_path / "pen.sock"
    log = tmp_path / "pen.log"
    pen(["-l", log, path, f"{a.spec}"])
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET /u HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.endswith(b"A")
    assert log.read_bytes().startswith(b" ")


def test_other_protocol_logs_first_chunk(tmp_path, backends, pen):
    """The SMTP recipe (-r): one pen.log line per connection, its first chunk."""
    (echo,) = backends("E", mode="echo")
    port = free_port()
    log = tmp_path / "pen.log"
    pen(["-l", log, "-r", port, echo.spec])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"EHLO mail.example\r\n")
        assert sock.recv(100) == b"EHLO mail.example\r\n"
        sock.sendall(b"MAIL FROM:<a@b>\r\n")
        assert sock.recv(100) == b"MAIL FROM:<a@b>\r\n"
    time.sleep(0.1)
    assert log.read_bytes().split(b" ", 3)[3] == b"EHLO mail.example\n"


def test_usage_errors_exit_2():
    run = subprocess.run([*PEN, "-f", "8080", "host:notaport"], capture_output=True, text=True,
                         timeout=20)
    assert run.returncode == 2 and "invalid server" in run.stderr
    run = subprocess.run([*PEN, "-Y"], capture_output=True, text=True, timeout=20)
    assert run.returncode == 2 and "option -Y not recognized" in run.stderr
    run = subprocess.run([*PEN], capture_output=True, text=True, timeout=20)
    assert run.returncode == 0 and "usage" in run.stdout


def test_daemon_reports_startup_failure(backends):
    """Without -f the parent waits for the child's verdict and exits 1 with its message."""
    (a,) = backends("A")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = subprocess.run([*PEN, f"127.0.0.1:{busy.getsockname()[1]}", a.spec],
                             capture_output=True, text=True, timeout=20)
    assert run.returncode == 1
    assert "cannot listen on 127.0.0.1:" in run.stderr


@pytest.mark.parametrize("loop", ["asyncio", "poll", "uvloop"])
def test_both_event_loops_proxy_and_log(tmp_path, backends, pen, loop):
    (echo,) = backends("E", mode="echo")
    port = free_port()
    log = tmp_path / "pen.log"
    pen(["--loop", loop, "-l", log, port, echo.spec])
    body = bytes(range(256)) * 4000  # a body, framed: unframed bytes after a head are refused
    payload = b"POST /loop HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data == payload
    assert log.read_bytes().endswith(b" POST /loop HTTP/1.1\n")


def test_emergency_without_port_uses_the_listen_port(tmp_path, pen):
    """``-e host`` gets the LISTEN port, like a backend without one; -d logs the failover."""
    port = free_port()
    emergency = Backend("Emergency", host="127.0.0.2").start(port)
    try:
        proc = pen(["-d", "-e", "127.0.0.2", f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"])
        assert http_get(port) == b"Emergency"
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(15) == 0
        assert b"failed" in proc.proc.stderr.read()
    finally:
        emergency.stop()


def test_byte_counters_reach_servers_and_recent(backends, pen):
    (echo,) = backends("E", mode="echo")
    port, ctl = free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", port, echo.spec])
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=("127.0.0.8", 0)) as sock:
        sock.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:
            got += sock.recv(4096)
    time.sleep(0.2)
    penctl = [PENCTL, f"127.0.0.1:{ctl}"]
    servers = subprocess.run([*penctl, "servers"], capture_output=True, text=True).stdout
    assert servers.split()[-4:] == ["sx", "1000", "rx", "1000"]
    recent = subprocess.run([*penctl, "recent"], capture_output=True, text=True).stdout
    assert "127.0.0.8 connects 1 sx 1000 rx 1000" in recent


def test_tracking_expiry(backends, pen):
    """-T 1: a client not seen for over a second is a new client (round robin moves on)."""
    servers = backends("A", "B", "C")
    port = free_port()
    pen(["-T", "1", port, *[s.spec for s in servers]])
    assert http_get(port, source="127.0.0.2") == b"B"
    assert http_get(port, source="127.0.0.3") == b"C"
    assert http_get(port, source="127.0.0.2") == b"B"
    time.sleep(2.2)
    assert http_get(port, source="127.0.0.2") == b"A"


def test_weight_and_prio(backends, pen):
    a, b = backends("A", "B")
    port, port2, port3 = free_port(), free_port(), free_port()
    pen(["-W", port, f"{a.spec}:0:0:1", f"{b.spec}:0:0:3"])
    assert http_get(port, source="127.0.0.2") == b"A"
    pen(["-W", port2, a.spec, b.spec])
    assert http_get(port2) == b""
    pen(["-o", "prio", port3, f"{a.spec}:0:0:0:5", f"{b.spec}:0:0:0:1"])
    assert {http_get(port3, source=s) for s in clients(4)} == {b"B"}


def test_unix_socket_backend(tmp_path, pen):
    path = tmp_path / "backend.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    server.settimeout(10)
    port = free_port()
    pen([port, str(path)])

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"hello unix")
            assert sock.recv(100) == b"HELLO UNIX"
    finally:
        thread.join(5)
        server.close()



def _read_line(sock: socket.socket) -> bytes:
    """One line, or what came before EOF."""
    data = b""
    try:
        while not data.endswith(b"\n") and (chunk := sock.recv(1)):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@contextlib.contextmanager
def _pair(port: int, listener: socket.socket) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A client through pen and the backend's end of it, once "hello" has gone through."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"hello\n")
        backend, _ = listener.accept()
        with backend:
            backend.settimeout(10)
            assert _read_line(backend) == b"hello\n"
            yield client, backend


def test_tcp_fastclose_end_to_end(pen):
    """Each mode set through the control port, against a real backend: with ``up`` the
    backend's half-close closes the whole connection (the client's later write never reaches
    the backend); with ``down`` the client's half-close does (the backend's late reply never
    reaches the client); ``off`` passes each half-close on and both directions keep going."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)
        port, ctl = free_port(), free_port()
        pen(["-u", "root", "-C", f"127.0.0.1:{ctl}", str(port),
             f"127.0.0.1:{listener.getsockname()[1]}"])
        for mode in ("off", "up", "down", "both"):
            set_mode = subprocess.run([PENCTL, f"127.0.0.1:{ctl}", "tcp_fastclose",
                                       mode], capture_output=True, timeout=30)
            assert set_mode.returncode == 0 and set_mode.stdout == b""
            # The backend half-closes after its reply; then the client writes more.
            with _pair(port, listener) as (client, backend):
                backend.sendall(b"reply\n")
                backend.shutdown(socket.SHUT_WR)
                assert read_all(client) == b"reply\n"
                client.sendall(b"more\n")
                more = _read_line(backend)
            assert more == (b"" if mode in ("up", "both") else b"more\n"), mode
            # The client half-closes after its request; then the backend answers late.
            with _pair(port, listener) as (client, backend):
                client.shutdown(socket.SHUT_WR)
                assert read_all(backend) == b""
                with contextlib.suppress(OSError):
                    backend.sendall(b"late\n")
                backend.close()
                late = read_all(client)
            assert late == (b"" if mode in ("down", "both") else b"late\n"), mode
