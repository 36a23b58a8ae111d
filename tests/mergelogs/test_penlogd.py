"""penlog and penlogd on real sockets: our pen's netlog and the backends' lines through penlog
into penlogd, with clients on several 127.0.0.x addresses; Debian's penlog as a sender."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mergelogs.livecli import penlog
from mergelogs.sender import LINE_MAX, read_lines
from pen.penlog import format_netlog
from tests.mergelogs.conftest import BASE, clf
from tests.pen.helpers import Backend, Pen, free_port, http_get

BIN = Path(sys.executable).parent
C_PENLOG = "/usr/bin/penlog"


class Penlogd:
    """Our penlogd in the foreground, stopped by its pid (on 127.0.0.1 unless ``args`` has
    a ``--bind`` of its own)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.out = tmp / "merged_log"
        self.pidfile = tmp / "penlogd.pid"
        self.proc = subprocess.Popen(
            [str(BIN / "penlogd"), "-f", "-l", str(self.out), "-p", str(self.pidfile),
             *([] if "--bind" in args else ["--bind", "127.0.0.1"]), *args, str(self.port)],
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (self.pidfile.exists() and self.pidfile.read_text()):
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "penlogd did not start"
            time.sleep(0.02)
        self.pid = int(self.pidfile.read_text())

    def lines(self, path: Path | None = None) -> list[bytes]:
        path = path or self.out
        return path.read_bytes().splitlines(keepends=True) if path.exists() else []

    def wait_lines(self, count: int, path: Path | None = None, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.lines(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.lines(path)

    def stop(self) -> int:
        """TERM by pid; the exit status (stderr is kept in ``err``)."""
        if self.proc.stderr.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(15)
            self.err = self.proc.stderr.read()
            return code
        finally:
            self.proc.stderr.close()


@pytest.fixture
def penlogd(tmp_path):
    started: list[Penlogd] = []

    def start(*args: str) -> Penlogd:
        daemon = Penlogd(tmp_path, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


class Piped:
    """A penlog process fed line by line (as Apache's piped log feeds it)."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self.lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(15)
        self.proc.stderr.close()  # type: ignore[union-attr]
        return code


def test_live_merge_of_pen_and_two_backends_with_rotation(tmp_path, penlogd):
    daemon = penlogd("-d", "--hold", "0.5")
    backends, senders = [], []
    try:
        for host in ("127.0.0.10", "127.0.0.11"):
            sender = Piped([str(BIN / "penlog"), "127.0.0.1", str(daemon.port), host])
            backend = Backend(host, host=host).start()
            backend.log = sender.write  # each access-log line straight into penlog's stdin
            backends.append(backend)
            senders.append(sender)
        port = free_port()
        pen = Pen(tmp_path, ["-l", f"127.0.0.1:{daemon.port}", str(port),
                             *(b.spec for b in backends)]).start()
        try:
            long_path = "/" + "l" * 120 + "?q=1"  # a request line of 100+ bytes
            clients = [f"127.0.0.{n}" for n in range(2, 6)]
            made: list[tuple[str, str]] = []

            def traffic(round_: int) -> None:
                for client in clients:
                    for path in (f"/{client}/{round_}", "/same", long_path):
                        assert http_get(port, path, source=client) in (b"127.0.0.10",
                                                                       b"127.0.0.11")
                        made.append((client, path))

            traffic(1)
            first = daemon.wait_lines(len(made))
            rotated = tmp_path / "merged_log.1"
            daemon.out.rename(rotated)
            os.kill(daemon.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not daemon.out.exists():
                assert time.monotonic() < deadline, "penlogd did not reopen its output"
                time.sleep(0.02)
            traffic(2)
            second = daemon.wait_lines(len(made) - len(first))
        finally:
            pen.stop()
    finally:
        for backend in backends:
            backend.stop()
        for sender in senders:
            assert sender.close() == 0
    assert daemon.lines(rotated) == first
    got = sorted((line.split(b" ")[0].decode(), line.split(b'"')[1].split(b" ")[1].decode())
                 for line in first + second)
    assert got == sorted(made)  # every line, each with the client that made its request
    assert daemon.stop() == 0
    assert b"%d lines (%d matched, 0 unmatched)" % (len(made), len(made)) in daemon.err


def test_debian_penlog_into_our_penlogd(tmp_path, penlogd):
    if not os.path.exists(C_PENLOG):
        if os.environ.get("CI"):
            pytest.fail("Debian's penlog is missing (package pen)")
        pytest.skip("Debian package pen not installed")
    daemon = penlogd("--hold", "0.3", "--bind", "")  # every address, IPv4 as mapped IPv6
    now = int(time.time())
    lines = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pen_side:
        for i, sender in enumerate(([C_PENLOG], [str(BIN / "penlog")])):
            request = b"GET /from/%d HTTP/1.1" % i
            pen_side.sendto(format_netlog(f"192.0.2.{i + 1}", "127.0.0.12", request + b"\r\n"),
                            ("127.0.0.1", daemon.port))
            time.sleep(0.05)
            line = clf("127.0.0.12", now, request)
            lines.append(line)
            piped = Piped([*sender, "127.0.0.1", str(daemon.port), "127.0.0.12"])
            piped.write(line)
            assert piped.close() == 0
    merged = daemon.wait_lines(2)
    assert merged == [b"192.0.2.%d" % (i + 1) + line[len(b"127.0.0.12"):]
                      for i, line in enumerate(lines)]


def test_a_long_line_is_one_datagram_where_debian_penlog_splits_it():
    """C penlog sends a 3,000-byte line as three datagrams; ours sends it whole."""
    line = b"127.0.0.1 - - [x] \"GET /" + b"z" * 3000 + b' HTTP/1.1" 200 1\n'
    received = {}
    for name, command in (("ours", [str(BIN / "penlog")]), ("debian", [C_PENLOG])):
        if not os.path.exists(command[0]):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.settimeout(0.5)
            subprocess.run([*command, "127.0.0.1", str(sink.getsockname()[1])], input=line,
                           timeout=15, check=True)
            datagrams = []
            try:
                while True:
                    datagrams.append(sink.recv(65536))
            except TimeoutError:
                pass
        received[name] = datagrams
    assert received["ours"] == [line]
    if "debian" in received:
        assert len(received["debian"]) == 3 and b"".join(received["debian"]) == line


def test_read_lines_cuts_never_splits():
    data = b"short\n" + b"x" * 50 + b"\n" + b"y" * 10 + b"end"
    assert list(read_lines(io.BytesIO(data), limit=20)) == [
        (b"short\n", False), (b"x" * 19 + b"\n", True), (b"y" * 10 + b"end", False)]
    exact = b"a" * 19 + b"\n"
    assert list(read_lines(io.BytesIO(exact), limit=20)) == [(exact, False)]
    assert LINE_MAX == 65507


def test_penlog_sends_from_my_ip_and_reports_a_cut_line():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(5)
        port = str(sink.getsockname()[1])
        result = CliRunner().invoke(penlog, ["127.0.0.1", port, "127.0.0.7"],
                                    input=b"one\ntwo")
        assert result.exit_code == 0, result.output
        got = [sink.recvfrom(100) for _ in range(2)]
        assert [data for data, _ in got] == [b"one\n", b"two"]
        assert {source[0] for _, source in got} == {"127.0.0.7"}
        result = CliRunner().invoke(penlog, ["127.0.0.1", port],
                                    input=b"x" * (LINE_MAX + 10) + b"\nafter\n")
        assert result.exit_code == 1
        assert "longer than 65507 bytes: sent cut" in result.output
        assert sink.recv(70000) == b"x" * (LINE_MAX - 1) + b"\n"
        assert sink.recv(100) == b"after\n"


def test_penlog_usage_and_bad_server():
    assert CliRunner().invoke(penlog, ["127.0.0.1"]).exit_code == 2
    assert CliRunner().invoke(penlog, ["no.such.host.invalid", "9"]).exit_code == 2


def test_penlogd_port_in_use_and_daemon_mode(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = str(busy.getsockname()[1])
        run = subprocess.run([str(BIN / "penlogd"), "-f", "--bind", "127.0.0.1", port],
                             capture_output=True, timeout=20)
    assert run.returncode == 2 and b"cannot receive on port" in run.stderr
    pidfile, out = tmp_path / "d.pid", tmp_path / "out"
    port = str(free_port(socket.SOCK_DGRAM))
    run = subprocess.run([str(BIN / "penlogd"), "-l", str(out), "-p", str(pidfile), "--bind",
                          "127.0.0.1", port], capture_output=True, timeout=20)
    assert run.returncode == 0  # the parent is gone, the daemon runs on
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid = int(pidfile.read_text())
    line = clf("127.0.0.1", BASE, b"GET / HTTP/1.0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(line, ("127.0.0.1", int(port)))
    os.kill(pid, signal.SIGTERM)  # the waiting line is written on the way out
    while pidfile.exists():
        assert time.monotonic() < deadline + 10
        time.sleep(0.02)
    assert out.read_bytes() == line


def test_against_debian_penlogd_one_to_one_and_long_requests(tmp_path, penlogd):
    """The same datagrams into C penlogd and ours: C gives two lines the same client and
    never matches a request of 100+ bytes; ours restores each line's own client."""
    c_penlogd = "/usr/bin/penlogd"
    if not os.path.exists(c_penlogd):
        if os.environ.get("CI"):
            pytest.fail("Debian's penlogd is missing (package pen)")
        pytest.skip("Debian package pen not installed")
    long_request = b"GET /" + b"q" * 120 + b" HTTP/1.1"
    entries = [("192.0.2.3", b"GET /same HTTP/1.1"), ("192.0.2.4", b"GET /same HTTP/1.1"),
               ("192.0.2.5", long_request)]
    now = int(time.time())
    lines = [clf("127.0.0.12", now, request) for _, request in entries]
    ours = penlogd("--hold", "0.3")
    c_port = free_port(socket.SOCK_DGRAM)
    c_out = tmp_path / "c_merged"
    peer = subprocess.Popen([c_penlogd, "-f", "-b", "-l", str(c_out), str(c_port)],
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # C penlogd has no pid file in the foreground: give it time to bind
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pen_side, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as web:
            web.bind(("127.0.0.12", 0))
            for port in (ours.port, c_port):
                for client, request in entries:
                    pen_side.sendto(format_netlog(client, "127.0.0.12", request + b"\r\n"),
                                    ("127.0.0.1", port))
                time.sleep(0.05)
                for line in lines:
                    web.sendto(line, ("127.0.0.1", port))
        merged = ours.wait_lines(3)
        deadline = time.monotonic() + 10
        while (not c_out.exists() or len(c_out.read_bytes().splitlines()) < 3) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        theirs = c_out.read_bytes().splitlines(keepends=True)
    finally:
        peer.terminate()
        peer.wait(10)
    assert [line.split(b" ")[0] for line in merged] == [b"192.0.2.3", b"192.0.2.4",
                                                        b"192.0.2.5"]
    assert [line.split(b" ")[0] for line in theirs] == [b"192.0.2.4", b"192.0.2.4",
                                                        b"127.0.0.12"]
    assert [line.partition(b" ")[2] for line in merged] == [
        line.partition(b" ")[2] for line in theirs]


def test_penlogd_in_a_chroot_as_nobody(tmp_path):
    """-j and -u: the output and pid file are opened inside the jail by the unprivileged
    user, and HUP reopens the output there."""
    if os.getuid() != 0:
        pytest.skip("needs root for chroot")
    jail = tmp_path / "jail"
    jail.mkdir()
    jail.chmod(0o777)
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen([str(BIN / "penlogd"), "-f", "-j", str(jail), "-u", "nobody",
                             "-l", "/out", "-p", "/pid", "--hold", "0.2", "--bind",
                             "127.0.0.1", str(port)], stderr=subprocess.PIPE)
    try:
        pidfile = jail / "pid"
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        assert (jail / "out").stat().st_uid == pidfile.stat().st_uid != 0
        line = clf("127.0.0.12", int(time.time()), b"GET /jail HTTP/1.0")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as web:
            web.bind(("127.0.0.12", 0))
            web.sendto(format_netlog("192.0.2.8", "127.0.0.12", b"GET /jail HTTP/1.0\r\n"),
                       ("127.0.0.1", port))
            web.sendto(line, ("127.0.0.1", port))
        while not (jail / "out").read_bytes():
            assert time.monotonic() < deadline + 10
            time.sleep(0.02)
        (jail / "out").rename(jail / "out.1")
        os.kill(proc.pid, signal.SIGHUP)
        while not (jail / "out").exists():
            assert time.monotonic() < deadline + 20
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
        proc.stderr.close()
    assert (jail / "out.1").read_bytes() == b"192.0.2.8" + line[len(b"127.0.0.12"):]
    assert not pidfile.exists()
