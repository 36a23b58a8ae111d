"""pen on a bad day: forged headers, unframeable heads, idle attackers, descriptor exhaustion,
and the -d -d trace, each against a real pen process on loopback."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest

from .helpers import Pen, SocketThread, free_port, http_get, read_all, scrape

FORGED = (b"GET /forged HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6\r\n"
          b"X-Forwarded-Proto: https\r\n\r\n")


class RawBackend(SocketThread):
    """One-connection-at-a-time backend: answers ``first`` to the first head of a connection
    and 200 to each later one; keeps every byte it received, per connection."""

    def __init__(self, first: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") -> None:
        self.first = first
        self.received: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._begin()

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        data = b""
        answered = 0
        self.received.append(b"")
        while self._running:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            self.received[-1] = data
            heads = data.count(b"\r\n\r\n")
            while answered < heads:
                conn.sendall(self.first if answered == 0 else
                             b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                answered += 1


@pytest.fixture
def raw():
    started: list[RawBackend] = []

    def start(first: bytes | None = None) -> RawBackend:
        backend = RawBackend(first) if first is not None else RawBackend()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


def client(port: int, source: str = "127.0.0.2", timeout: float = 10.0) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One response head (our backends send no bodies)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def log_requests(log) -> list[bytes]:
    if not log.exists():
        return []
    return [line.split(b" ", 3)[3] for line in log.read_bytes().splitlines()]


# -- forged headers and lost log lines -------------------------------------------------------

@pytest.mark.parametrize(
    ("opening", "answer", "switched"),
    [
        (b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", True),
        (b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
         b"HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n\r\n", False),
        (b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
         b"HTTP/1.1 200 Connection established\r\n\r\n", True),
    ],
)
def test_only_a_real_switch_lets_forged_headers_through(tmp_path, raw, pen, opening, answer,
                                                        switched):
    backend = raw(answer)
    port, log = free_port(), tmp_path / "pen.log"
    pen(["-H", "-l", log, port, backend.spec])
    with client(port) as sock:
        sock.sendall(opening)
        assert read_response(sock).startswith(answer.split(b"\r\n")[0])
        sock.sendall(FORGED)
        if not switched:
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: FORGED.split(b"\r\n")[0] in backend.received[-1])
    received = backend.received[-1]
    if switched:
        assert received.endswith(FORGED)
        assert log_requests(log) == [opening.split(b"\r\n")[0]]
    else:
        forged = received[received.index(b"GET /forged"):]
        assert b"X-Forwarded-For: 6.6.6.6, 127.0.0.2\r\n" in forged
        assert b"X-Forwarded-Proto: http\r\n" in forged and b"https" not in forged
        assert wait_for(lambda: log_requests(log) == [opening.split(b"\r\n")[0],
                                                      b"GET /forged HTTP/1.1"])


@pytest.mark.parametrize("length", [b"Content-Length: abc",
                                    b"Content-Length: 5\r\nContent-Length: 6",
                                    b"Content-Length: 5\r\nTransfer-Encoding: chunked"])
@pytest.mark.parametrize("mode", [["-H"], []])
def test_bad_content_length_is_answered_400_and_nothing_passes(tmp_path, raw, pen, length, mode):
    backend = raw()
    port, log = free_port(), tmp_path / "pen.log"
    pen([*mode, "-l", log, port, backend.spec])
    with client(port) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"POST /2 HTTP/1.1\r\nHost: t\r\n" + length + b"\r\n\r\nhello" + FORGED)
        assert read_all(sock).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert wait_for(lambda: log_requests(log) == [b"GET /1 HTTP/1.1"])
    assert b"POST" not in backend.received[-1] and b"6.6.6.6" not in backend.received[-1]


def test_refusals_are_counted_by_name(raw, pen):

    backend = raw()
    port, metrics = free_port(), free_port()
    pen(["-H", "--metrics", f"127.0.0.1:{metrics}", port, backend.spec])
    for head in (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"GET / HTTP/1.1\r\nA\r\n\r\n",
                 b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"):
        with client(port) as sock:
            sock.sendall(head)
            assert read_all(sock).startswith(b"HTTP/1.1 400 ")
    events = {dict(labels)["event"]: value for (name, labels), value in scrape(metrics).items()
              if name == "pen_events_total"}
    assert events["bad_content_length"] == 2 and events["bad_header"] == 1
    assert events["head_too_large"] == events["idle_timeout"] == 0


def test_two_xff_headers_the_real_client_ends_the_joined_header(tmp_path, raw, pen):
    backend = raw()
    port, log = free_port(), tmp_path / "pen.log"
    pen(["-H", "-l", log, port, backend.spec])
    with client(port, "127.0.0.3") as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nX-Forwarded-For: 10.1.1.1\r\nHost: t\r\n"
                     b"X-Forwarded-For: 6.6.6.6\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    head = backend.received[-1]
    values = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
              if line.lower().startswith(b"x-forwarded-for:")]
    assert b", ".join(values).split(b", ")[-1] == b"127.0.0.3"
    assert wait_for(lambda: log_requests(log) == [b"GET /x HTTP/1.1"])


def test_a_70k_head_in_two_writes_is_refused_431(tmp_path, raw, pen):
    backend = raw()
    port, log = free_port(), tmp_path / "pen.log"
    pen(["-H", "-l", log, port, backend.spec])
    head = (b"GET /big HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Pad: " + b"a" * 70000
            + b"\r\n\r\n")
    with client(port) as sock:
        sock.sendall(head[:40000])
        time.sleep(0.3)
        try:
            sock.sendall(head[40000:])
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")
    assert all(b"6.6.6.6" not in data for data in backend.received)
    assert log_requests(log) == []


# -- idle attackers --------------------------------------------------------------------------

def test_idle_clients_under_idle_timeout_free_their_slots(backends, pen):
    (backend,) = backends("B")
    port = free_port()
    pen(["-x", "4", "-o", "idle_timeout 2", port, backend.spec])
    idle = [client(port, f"127.0.0.{10 + i}") for i in range(4)]
    try:
        assert wait_for(lambda: backend.accepted == 4)
        started = time.monotonic()
        # The table is full: this client waits in the backlog until the idle ones are cut.
        assert http_get(port, "/", source="127.0.0.20", timeout=20) == b"B"
        assert time.monotonic() - started >= 1.5
        for sock in idle:
            assert read_all(sock) == b""
    finally:
        for sock in idle:
            sock.close()


def test_a_silent_backend_under_idle_timeout(pen):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        port = free_port()
        pen(["-o", "idle_timeout 1", port, f"127.0.0.1:{silent.getsockname()[1]}"])
        with client(port, timeout=20) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_all(sock) == b""
    finally:
        silent.close()


def test_idle_timeout_command_answers_like_pen(tmp_path, backends, pen):
    (backend,) = backends("B")
    port, control = free_port(), free_port()
    pen(["-u", "root", "-C", f"127.0.0.1:{control}", port, backend.spec])
    import subprocess

    def penctl(*words: str) -> bytes:
        return subprocess.run(["/usr/bin/penctl", f"127.0.0.1:{control}", *words],
                              capture_output=True, timeout=10, check=True).stdout

    assert penctl("idle_timeout") == b"Idle timeout: 0 seconds\n"
    assert penctl("idle_timeout", "30") == b"Idle timeout: 30 seconds\n"
    assert penctl("idle_timeout") == b"Idle timeout: 30 seconds\n"


def test_a_trickled_head_is_answered_408(backends, pen):
    (backend,) = backends("B")
    port = free_port()
    pen(["-H", "-x", "2", "--head-timeout", "2", port, backend.spec])
    tricklers = [client(port, f"127.0.0.{30 + i}", timeout=20) for i in range(2)]
    try:
        assert wait_for(lambda: backend.accepted == 2)
        stop = threading.Event()

        def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nX-A: " + b"a" * 200:
                if stop.wait(0.3):
                    return
                for sock in tricklers:
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            assert http_get(port, "/", source="127.0.0.40", timeout=20) == b"B"
            for sock in tricklers:
                assert read_all(sock).startswith(b"HTTP/1.1 408 ")
        finally:
            stop.set()
            thread.join(5)
        assert backend.heads == [b"GET / HTTP/1.0\r\nHost: test\r\nX-Forwarded-For: 127.0.0.40\r\n"
                                 b"X-Forwarded-Proto: http"]
    finally:
        for sock in tricklers:
            sock.close()


# -- descriptor exhaustion -------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_accept_under_a_low_descriptor_limit(tmp_path, backends, loop):
    (echo,) = backends("E", mode="echo")
    port = free_port()

    def low_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    proc = Pen(tmp_path, ["--loop", loop, str(port), echo.spec], preexec_fn=low_limit).start()
    started = time.monotonic()
    assert proc.proc is not None
    idle_fds = len(os.listdir(f"/proc/{proc.proc.pid}/fd"))
    socks: list[socket.socket] = []
    try:
        for i in range(60):  # more pairs than 64 descriptors hold
            socks.append(client(port, f"127.0.1.{i + 1}"))
        for sock in socks[:10]:  # the first ones are served ...
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        before = _cpu_seconds(proc.pid)
        time.sleep(1.0)
        assert _cpu_seconds(proc.pid) - before < 0.5  # ... the rest wait or are let go: no spin
        for sock in socks[:10]:  # open connections are still served
            sock.sendall(b"again")
            assert sock.recv(5) == b"again"
        for sock in socks:
            sock.close()
        socks.clear()
        # The closed clients still queued in the kernel backlog are accepted (and closed) in
        # bursts first; a live client in such a burst may be let go ("shed") while they hold
        # the descriptors. Once pen holds no more than at the start, they are all gone.
        assert wait_for(lambda: len(os.listdir(f"/proc/{proc.proc.pid}/fd")) <= idle_fds)
        for i in range(5):  # descriptors came back: accepting again
            socks.append(client(port, f"127.0.2.{i + 1}"))
            socks[-1].sendall(b"pong")
            assert socks[-1].recv(4) == b"pong"
        assert proc.proc is not None and proc.proc.poll() is None
    finally:
        for sock in socks:
            sock.close()
        assert proc.proc is not None and proc.proc.stderr is not None
        proc.signal(15)
        errors = proc.proc.stderr.read()
        proc.stop()
    elapsed = time.monotonic() - started
    warnings = [line for line in errors.splitlines() if b"out of file descriptors" in line]
    assert 1 <= len(warnings) <= elapsed + 1, errors  # at most once a second
    assert b"Traceback" not in errors


# -- the -d -d trace -------------------------------------------------------------------------

def test_debug_trace_of_a_failover(tmp_path, backends):
    (live,) = backends("L")
    dead = free_port()
    port = free_port()
    proc = Pen(tmp_path, ["-d", "-d", str(port), live.spec, f"127.0.0.1:{dead}"]).start()
    try:
        assert http_get(port, "/", source="127.0.0.5") == b"L"
    finally:
        assert proc.proc is not None and proc.proc.stderr is not None
        proc.signal(15)
        trace = proc.proc.stderr.read().decode()
        proc.stop()
    lines = [line.split(": ", 1)[1] for line in trace.splitlines() if ": 127.0.0.5:" in line]
    client = lines[0].split(": ")[0]
    said = [line.split(": ", 1)[1] for line in lines]
    chunks = [e for e in said if e.split(" ")[0].isdigit()]
    events = [e for e in said if not e.split(" ")[0].isdigit()]
    assert events[0].startswith("accepted")
    assert events[1] == f"server 1 (127.0.0.1:{dead}) chosen by roundrobin"
    assert events[2].startswith(f"connect to server 1 (127.0.0.1:{dead}) failed (")
    assert events[2].endswith("): blacklisted for 30 s")
    assert events[3] == f"server 0 ({live.spec}) chosen by failover"
    assert events[4] == "connected to server 0"
    assert chunks.count("30 bytes from the client") == 1  # held while connecting, read once
    assert any(e.endswith("bytes from server 0") for e in chunks)
    close = events[-1]
    assert close.startswith("closed, server 0: ") and client.startswith("127.0.0.5:")
    sent = int(close.split(": ")[1].split(" ")[0])
    assert sent == len(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
