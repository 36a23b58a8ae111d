"""TLS termination, IPv6 both ways, netlog, status page, -o, user and chroot (on loopback)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .helpers import PEN, Pen, free_port, http_get, https_get


def test_tls_termination(tmp_path, certificate, backends, pen):
    """testsuite case 8 with a fresh certificate; the backend sees X-Forwarded-Proto: https."""
    cert, key = certificate
    (a,) = backends("100")
    port = free_port()
    log = tmp_path / "pen.log"
    proc = pen(["-E", cert, "-K", key, "-H", "-l", log, port, a.spec])
    assert https_get(port, "/secure") == b"100"
    assert b"X-Forwarded-Proto: https" in a.heads[-1]
    assert log.read_bytes().endswith(b" GET /secure HTTP/1.0\n")
    proc.signal(15)
    assert b"eof_received" not in proc.proc.stderr.read()  # no warning per TLS connection


def test_ipv6_to_ipv4(backends, pen):
    """testsuite case 9: ``:::port`` listens on IPv6 and forwards to an IPv4 backend."""
    (a,) = backends("100")
    port = free_port()
    pen([f":::{port}", a.spec])
    assert http_get(port, host="::1") == b"100"


def test_ipv4_to_ipv6(backends, pen):
    """testsuite case 10: a ``[::1]`` backend behind an IPv4 listener, ``[::]:port`` syntax too."""
    (a,) = backends("100", host="::1")
    port, port6 = free_port(), free_port()
    pen([f"127.0.0.1:{port}", a.spec])
    pen([f"[::]:{port6}", a.spec])
    assert http_get(port) == b"100"
    assert http_get(port6, host="::1") == b"100"


def test_netlog_datagrams(backends, pen):
    (a,) = backends("A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        port = free_port()
        pen(["-l", f"127.0.0.1:{collector.getsockname()[1]}", port, a.spec])
        assert http_get(port, "/caf\xe9", source="127.0.0.6") == b"A"
        datagram = collector.recv(2048)
    assert datagram == b"+ 127.0.0.6 127.0.0.1 GET /caf\xc3\xa9 HTTP/1.0\n"


def test_usr1_writes_status_page(tmp_path, backends, pen):
    a, b = backends("A", "B")
    port = free_port()
    page = tmp_path / "status.html"
    proc = pen(["-w", page, port, a.spec, b.spec])
    http_get(port, source="127.0.0.4")
    proc.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not page.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    text = page.read_text()
    assert "Pen status page" in text and "127.0.0.4" in text and f"<td>{b.port}</td>" in text


def test_o_runs_commands_at_startup(tmp_path, backends, pen):
    a, b = backends("A", "B")
    port = free_port()
    proc = pen(["-o", f"server 0 port {b.port}", "-o", "blacklist", port, a.spec])
    assert http_get(port) == b"B"
    proc.signal(signal.SIGTERM)
    assert proc.proc.wait(15) == 0
    assert proc.proc.stdout.read() == b"30\n"


def test_python_m_pen_prints_usage():
    run = subprocess.run(PEN, capture_output=True, text=True, timeout=20)
    assert run.returncode == 0 and "[host:]port h1[:p1" in run.stdout


def test_user_and_chroot(backends):
    """-j and -u: log and pid paths are opened inside the jail by the unprivileged user."""
    (a,) = backends("A")
    jail = Path(tempfile.mkdtemp(prefix="penjail"))
    try:
        os.chmod(jail, 0o777)
        port = free_port()
        proc = subprocess.Popen([*PEN, "-f", "-j", str(jail), "-u", "nobody", "-l", "/pen.log",
                                 "-p", "/pen.pid", str(port), a.spec],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pidfile = jail / "pen.pid"
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pidfile.read_text() == str(proc.pid)
        assert http_get(port, "/jailed") == b"A"
        assert os.stat(jail / "pen.log").st_uid != 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read()
        proc.stderr.close()
        assert b"GET /jailed" in (jail / "pen.log").read_bytes()
        assert not pidfile.exists()
    finally:
        shutil.rmtree(jail)


def test_debug_foreground_recipe(backends, pen):
    """The LDAP recipe's ``pen -d -d -f 3890 localhost:389 localhost:390``, with failover."""
    a, b = backends("389", "390")
    port = free_port()
    pen(["-d", "-d", port, f"localhost:{a.port}", f"localhost:{b.port}"])
    first = http_get(port)
    (a if first == b"389" else b).stop()
    assert http_get(port) == (b"390" if first == b"389" else b"389")


def test_https_passthrough_recipe(tmp_path, certificate, backends, pen):
    """``pen -l pen.log lbhost:443 host1:443 host2:443``: TLS passes through untouched."""
    cert, key = certificate
    (a,) = backends("100")
    tls_port, port = free_port(), free_port()
    pen(["-E", cert, "-K", key, tls_port, a.spec])
    log = tmp_path / "pen443.log"
    pen(["-l", log, port, f"127.0.0.1:{tls_port}", f"127.0.0.1:{tls_port}"])
    assert https_get(port, "/through") == b"100"
    assert len(log.read_bytes().splitlines()) == 1


def test_hash_recipe_two_pens_agree(backends, pen):
    """``pen -h`` on port 80 and 443 with the same hosts: a client lands on the same host."""
    h80 = backends("host1", "host2")
    h443 = backends("host1", "host2")
    p80, p443 = free_port(), free_port()
    pen(["-h", p80, *[b.spec for b in h80]])
    pen(["-h", p443, *[b.spec for b in h443]])
    for i in range(2, 10):
        source = f"127.0.0.{i}"
        assert http_get(p80, source=source) == http_get(p443, source=source)


def test_pen_log_lines_match_c_pen(tmp_path, backends, pen):
    """The same requests through Debian's pen and ours give the same pen.log lines."""
    (a,) = backends("A")
    ours_log, c_log = tmp_path / "ours.log", tmp_path / "c.log"
    ours_port, c_port = free_port(), free_port()
    pen(["-l", ours_log, ours_port, a.spec])
    c_pen = Pen(tmp_path, ["-l", str(c_log), str(c_port), a.spec],
                command=["/usr/bin/pen"]).start()
    paths = ["/", "/caf\xe9?x=1", "/tab\there", "/" + "a" * 150, "/q?%41"]
    try:
        for port in (ours_port, c_port):
            for i, path in enumerate(paths):
                assert http_get(port, path, source=f"127.0.0.{i + 2}") == b"A"
    finally:
        c_pen.stop()

    def without_epoch(path):
        return [line.split(b" ", 2)[0] + b" " + line.split(b" ", 2)[2]
                for line in path.read_bytes().splitlines()]

    assert without_epoch(ours_log) == without_epoch(c_log)
    assert len(without_epoch(ours_log)) == len(paths)
