"""A small web server for the demo: HTTP/1.x on a real socket, an Apache combined log line per
request, written when the request ends; HUP reopens the log as Apache's graceful restart does.

Usage: ``python -m demo.backend --listen 127.0.1.1 --log access_log --pid web.pid``; once it
serves, it prints its port on stdout (``--port 0``, the default, takes a free one).

Design notes
------------
A connection is a loop of requests (keep-alive unless HTTP/1.0 without ``keep-alive`` or
``Connection: close``)::

    idle --head read--> busy --answer written, line logged--> idle ... --EOF/close--> done

``%t`` is the moment the head arrived (Apache stamps the start of a request) and the line is
written once the answer has gone out (Apache logs at the end), so the log is in completion
order, as real logs are. The line is one ``write`` on an unbuffered append-mode file, as
httpd does without BufferedLogs. TERM or INT closes the listener and the idle connections at
once; a busy connection finishes its request and logs it before it closes, so no answered
request is ever missing from the log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bench.genlogs import Hit, access_line

from mergelogs.accesslog import format_stamp

HEAD_MAX = 16384
"""Bytes a request head may take (Apache's LimitRequestFieldSize is 8190 per line)."""
BODY_MAX = 1 << 20
IDLE_SECONDS = 15.0
"""Keep-alive timeout: an idle connection is closed after this long (Apache's default is 5)."""
STOP_SECONDS = 10.0
"""How long a stop waits for busy connections to finish their request."""
_REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request", 404: b"Not Found",
            413: b"Content Too Large"}


@dataclass(frozen=True, slots=True)
class Request:
    """What the server needs of a request head."""

    line: bytes
    method: bytes
    path: bytes
    version: bytes
    headers: dict[bytes, bytes]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get(b"connection", b"").lower()
        if self.version == b"HTTP/1.0":
            return connection == b"keep-alive"
        return connection != b"close"


def parse_head(head: bytes) -> Request | None:
    """The request of a head ending in CRLFCRLF; None when it is not HTTP/1.x."""
    line, *fields = head[:-4].split(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1") or not parts[1]:
        return None
    headers = {}
    for field in fields:
        name, sep, value = field.partition(b":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return Request(line, parts[0], parts[1], parts[2], headers)


def page(request: Request) -> tuple[int, bytes]:
    """Status and body: a page whose size follows from its path; ``/missing/...`` is 404."""
    if request.method == b"POST":
        return 201, b"stored\n"
    if request.path.startswith(b"/missing/"):
        return 404, b"<html><body>Not Found</body></html>\n"
    size = 200 + zlib.crc32(request.path.partition(b"?")[0]) % 4800
    return 200, (b"<html><body>" + b"x" * size + b"</body></html>\n")


def local_stamp(epoch: float) -> bytes:
    """``%t`` in the server's local zone, as httpd writes it."""
    second = int(epoch)
    return format_stamp(second, time.localtime(second).tm_gmtoff)


class AccessLog:
    """The log file, reopened on HUP (the old one was renamed by logrotate meanwhile)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = self._open()
        self.lines = 0

    def _open(self) -> BinaryIO:
        return open(self.path, "ab", buffering=0)

    def write(self, line: bytes) -> None:
        self._file.write(line)
        self.lines += 1

    def reopen(self) -> None:
        """SIGHUP: close the renamed file, open a new one under the same name."""
        self._file.close()
        self._file = self._open()

    def close(self) -> None:
        self._file.close()


class WebServer:
    """Connections, their state (idle or busy) and the log."""

    def __init__(self, log: AccessLog) -> None:
        self.log = log
        self.stopping = False
        self._idle: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.Task[None]] = set()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A client connected (from pen): serve its requests until it or we close."""
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        peer = str(writer.get_extra_info("peername")[0])
        try:
            while not self.stopping and await self._one(task, peer, reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                TimeoutError, asyncio.CancelledError):
            pass  # the client went away, sent too much head, idled out, or we are stopping
        finally:
            self._idle.discard(task)
            self._open.discard(task)
            writer.close()

    async def _one(self, task: asyncio.Task[None], peer: str, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True when the connection stays open for another."""
        self._idle.add(task)
        async with asyncio.timeout(IDLE_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
        self._idle.discard(task)
        received = time.time()
        request = parse_head(head)
        if request is None:
            self._answer(writer, peer, received, head.split(b"\r\n", 1)[0], 400, b"", False)
            return False
        length = request.headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > BODY_MAX:
            self._answer(writer, peer, received, request.line, 413, b"", False, request)
            return False
        await reader.readexactly(int(length))
        status, body = page(request)
        self._answer(writer, peer, received, request.line, status,
                     b"" if request.method == b"HEAD" else body, request.keep_alive, request,
                     len(body))
        await writer.drain()
        return request.keep_alive

    def _answer(self, writer: asyncio.StreamWriter, peer: str, received: float, line: bytes,
                status: int, body: bytes, keep: bool, request: Request | None = None,
                length: int | None = None) -> None:
        """Write the response, then its log line (the request has ended for the server)."""
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n%s\r\n%s"
                     % (status, _REASONS[status], len(body) if length is None else length,
                        b"" if keep else b"Connection: close\r\n", body))
        headers = request.headers if request is not None else {}
        self.log.write(access_line("combined", peer, Hit(
            local_stamp(received), line, status, len(body),
            referer=headers.get(b"referer", b"-"), agent=headers.get(b"user-agent", b"-"))))

    async def stop(self) -> None:
        """Close idle connections now; let busy ones finish their request (bounded)."""
        self.stopping = True
        for task in list(self._idle):
            task.cancel()
        if self._open:
            await asyncio.wait(list(self._open), timeout=STOP_SECONDS)


async def serve(host: str, port: int, log_path: Path, pid_path: Path | None) -> None:
    """Listen, announce the port, serve until TERM or INT; HUP reopens the log."""
    loop = asyncio.get_running_loop()
    log = AccessLog(log_path)
    web = WebServer(log)
    server = await asyncio.start_server(web.connection, host, port, limit=HEAD_MAX,
                                        reuse_address=True)
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, log.reopen)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    if pid_path is not None:
        pid_path.write_text(f"{os.getpid()}\n")
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        await done.wait()
        server.close()
        await web.stop()
    finally:
        log.close()
        if pid_path is not None:
            pid_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve; 0 after a clean stop, 2 when it cannot listen."""
    parser = argparse.ArgumentParser(prog="python -m demo.backend", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--log", type=Path, required=True, help="access log (appended)")
    parser.add_argument("--pid", type=Path, help="pid file, removed on exit")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen, args.port, args.log, args.pid))
    except OSError as exc:
        print(f"demo.backend: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
