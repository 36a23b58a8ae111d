"""Test helpers for pen: loopback HTTP/echo backends that write real Apache combined lines,
raw clients bound to chosen 127.0.0.x addresses, and pen run as a subprocess stopped by pid.

The end-to-end chain test (pen.log + backend logs through mergelogs) reuses these backends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mergelogs.accesslog import format_stamp
from pen.app import close_server

PEN = [sys.executable, "-m", "pen"]


_HANDED_OUT: set[tuple[int, int]] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on every address a moment ago (pen's LISTEN cannot take port 0),
    and never one handed out before: a test that asks for a dead backend's port and then
    pen's own must not get the same number twice (pen would then balance onto itself)."""
    while True:
        with socket.socket(socket.AF_INET6, kind) as sock:
            sock.bind(("::", 0))
            port = sock.getsockname()[1]
        if (kind, port) not in _HANDED_OUT:
            _HANDED_OUT.add((kind, port))
            return port


def combined_line(client: str, epoch: int, request: bytes, status: int, size: int) -> bytes:
    """An Apache combined log line as httpd writes it (local offset of the test's TZ)."""
    offset = time.localtime(epoch).tm_gmtoff
    return b'%s - - [%s] "%s" %d %d "-" "pen-test"\n' % (
        client.encode(), format_stamp(epoch, offset), request, status, size
    )


class _HttpProtocol(asyncio.Protocol):
    """A keep-alive HTTP/1.x responder: the body names the backend (and echoes headers)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.buffer = b""
        self.body_left = 0

    def connection_made(self, transport):
        self.transport = transport
        self.backend.transports.add(transport)
        self.backend.accepted += 1

    def connection_lost(self, exc):
        self.backend.transports.discard(self.transport)

    def data_received(self, data):
        if self.backend.mode == "echo":
            self.transport.write(data)
            return
        self.buffer += data
        while True:
            if self.body_left:
                take = min(self.body_left, len(self.buffer))
                self.buffer = self.buffer[take:]
                self.body_left -= take
                if self.body_left:
                    return
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self._answer(head)

    def eof_received(self):
        return False

    def _answer(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        request = lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.body_left = int(headers.get(b"content-length", b"0"))
        self.backend.heads.append(head)
        body = self.backend.name.encode()
        if request.split(b" ")[1:2] == [b"/headers"]:
            body = head
        close = request.endswith(b"HTTP/1.0") or headers.get(b"connection") == b"close"
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (
            len(body), b"Connection: close\r\n" if close else b"", body
        )
        peer = self.transport.get_extra_info("peername")[0]
        self.backend.log(combined_line(peer, int(time.time()), request, 200, len(body)))
        self.transport.write(reply)
        if close:
            self.transport.close()


class Backend:
    """A loopback server on its own thread and loop; ``mode`` is ``http`` or ``echo``."""

    def __init__(self, name: str, host: str = "127.0.0.1", mode: str = "http",
                 log_path: Path | None = None) -> None:
        self.name = name
        self.host = host
        self.mode = mode
        self.log_path = log_path
        self.transports: set[asyncio.Transport] = set()
        self.heads: list[bytes] = []
        self.accepted = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._log_lock = threading.Lock()

    def log(self, line: bytes) -> None:
        if self.log_path is not None:
            with self._log_lock, open(self.log_path, "ab") as out:
                out.write(line)

    def start(self, port: int = 0) -> Backend:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(lambda: _HttpProtocol(self), self.host, port,
                                     reuse_address=True), self._loop)
        self._server = future.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection (a backend that dies)."""
        async def close():
            # asyncio makes an accepted connection's transport in a task, and that task
            # fails (Server._attach asserts) once the server is closed, leaving the socket
            # and a half-made transport to the garbage collector: an "unclosed transport"
            # error in whichever later test it runs. Let those tasks finish first.
            for _ in range(100):
                if not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                    break
                await asyncio.sleep(0)
            if self._server is not None:
                await close_server(self._server)
            # a connection accepted just now meets its protocol a turn later: cut until
            # none is left (bounded), so no transport outlives the loop
            for turn in range(100):
                for transport in list(self.transports):
                    transport.abort()
                await asyncio.sleep(0)
                if turn >= 2 and not self.transports:
                    break
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def spec(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def http_get(port: int, path: str = "/", source: str = "127.0.0.1", host: str = "127.0.0.1",
             timeout: float = 5.0, extra: bytes = b"") -> bytes:
    """GET over HTTP/1.0 from ``source``; the response body, or b"" if pen closed the socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        if family == socket.AF_INET:
            sock.bind((source, 0))
        sock.connect((host, port))
        sock.sendall(b"GET %s HTTP/1.0\r\nHost: test\r\n%s\r\n" % (path.encode(), extra))
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            return b""
    return data.partition(b"\r\n\r\n")[2]


class Pen:
    """Our pen (or the C one) as a foreground subprocess, stopped by its pid."""

    def __init__(self, tmp: Path, args: list[str], command: list[str] | None = None,
                 foreground: bool = True, preexec_fn=None) -> None:
        self.preexec_fn = preexec_fn
        self.pidfile = tmp / f"pen{id(self)}.pid"
        self.command = (command or PEN) + (["-f"] if foreground else []) + [
            "-p", str(self.pidfile), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def start(self, wait: float = 30.0) -> Pen:
        """Run pen and wait for its pid file; on any failure pen is killed and its pipes closed."""
        proc = self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, preexec_fn=self.preexec_fn)
        try:
            self.pid = self._await_pid(proc, wait)
        except BaseException:
            self.proc = None
            proc.kill()
            proc.communicate()
            raise
        return self

    def _await_pid(self, proc: subprocess.Popen[bytes], wait: float) -> int:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self.pidfile.read_text().strip():
                return int(self.pidfile.read_text())
            if proc.poll() is not None and not self.pidfile.exists():
                if proc.returncode != 0:
                    err = proc.communicate()[1]
                    raise RuntimeError(f"pen exited {proc.returncode}: {err.decode()}")
            time.sleep(0.02)
        raise RuntimeError("pen did not write its pid file")

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM by pid and wait; returns the exit status (of the foreground process)."""
        if self.proc is None:
            return 0
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + timeout
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()  # type: ignore[union-attr]
        return self.proc.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class SocketThread:
    """A bound socket served by a daemon thread (``_serve``) until ``stop``."""

    sock: socket.socket
    port: int

    def _begin(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._running = False
        self._thread.join(5)
        self.sock.close()

    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"


class UdpResponder(SocketThread):
    """A UDP server on its own thread answering ``<name>:<datagram>``."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name.encode()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.peers: list[tuple[str, int]] = []
        self._begin()

    def _serve(self) -> None:
        while self._running:
            try:
                data, peer = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.peers.append(peer)
            self.sock.sendto(self.name + b":" + data, peer)


def udp_ask(port: int, data: bytes = b"q", source: str = "127.0.0.1", timeout: float = 1.0,
            sock: socket.socket | None = None) -> bytes:
    """Send one datagram to pen and return the answer's name part, b"" on no answer."""
    own = sock is None
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
    sock.settimeout(timeout)
    try:
        sock.sendto(data, ("127.0.0.1", port))
        reply, peer = sock.recvfrom(65536)
        assert peer == ("127.0.0.1", port)
        return reply.split(b":", 1)[0]
    except TimeoutError:
        return b""
    finally:
        if own:
            sock.close()


def https_get(port, path="/"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET %s HTTP/1.0\r\nHost: t\r\n\r\n" % path.encode())
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ssl.SSLError:
            pass
    return data.partition(b"\r\n\r\n")[2]


def read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a page, keyed by name and sorted labels (the parser checks the format)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def fetch(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``request`` and read the whole response until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def scrape(port: int) -> dict:
    reply = fetch(port, b"GET /metrics HTTP/1.1\r\nHost: pen\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    return samples(body.decode())
