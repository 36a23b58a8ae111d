"""The running balancer: sockets, signals, privileges and graceful shutdown around a PenState."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable

from .commands import run_lines
from .config import ListenSpec, Settings, TlsSettings
from .control import ControlProtocol
from .dump import DUMP_LEVEL, DumpingClientSide
from .errors import StartupError
from .logsink import PenLog
from .state import PenState
from .stats import render_status
from .tcp import ClientSide

logger = logging.getLogger("pen.error")

SWEEP = 0.2
"""Seconds between scans for timed-out upstream connects."""

CUT_WAIT = 1.0
"""Seconds shutdown waits, after cutting the connections, for their sockets to be closed."""


def open_listener(spec: ListenSpec, backlog: int, udp: bool = False) -> socket.socket:
    """Bind and (for TCP) listen on ``spec`` with pen's socket options.

    :raises StartupError: the address cannot be bound.
    """
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    try:
        if spec.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spec.path)
            sock = socket.socket(socket.AF_UNIX, kind)
            sock.bind(spec.path)
        else:
            family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
            sock = socket.socket(family, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((spec.host, spec.port))
        if not udp:
            sock.listen(backlog)
    except OSError as exc:
        raise StartupError(f"cannot listen on {spec}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server-side context for -E/-K/-G/-A/-R/-L.

    :raises StartupError: unreadable certificate or key.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls.protocol == "tls1":
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    try:
        ctx.load_cert_chain(tls.cert, tls.key or tls.cert)
        if tls.ca_file or tls.ca_dir:
            ctx.load_verify_locations(tls.ca_file, tls.ca_dir)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"TLS setup failed: {exc}") from None
    if tls.require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def close_server(server: asyncio.Server) -> None:
    """Stop accepting, let the accepts under way become connections, then close ``server``.

    Python 3.11's asyncio makes an accepted socket a transport on the next loop turn and
    drops it, with its socket open, if the server was closed by then.
    """
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    await asyncio.sleep(0)
    server.close()


class ProxyState:
    """The one object the protocols share: tables, log, open connections, listener control."""

    def __init__(self, core: PenState, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop
        settings = core.settings
        self.log = PenLog(None)
        self.conns: set[ClientSide] = set()
        self.proxy_protocol = settings.proxy_protocol
        self.scheme = "https" if settings.tls is not None else "http"
        self.listen_sock: socket.socket | None = None
        self.server: asyncio.Server | None = None
        self.ssl: ssl.SSLContext | None = None
        self.accepting = False
        self.stopping = False
        self.stop_event = asyncio.Event()
        self.connecting: dict[ClientSide, float] = {}
        self.resuming: asyncio.Task[None] | None = None
        self.sweeper = loop.call_later(SWEEP, self._sweep_connects)

    @property
    def http(self) -> bool:
        """-H / ``http``: rewrite X-Forwarded-For and -Proto."""
        return self.core.settings.http

    # -- connection accounting and the -x limit ------------------------------------------
    def opened(self, conn: ClientSide) -> None:
        """A client connection was accepted; stop accepting when the table is full."""
        self.conns.add(conn)
        if len(self.conns) >= self.core.settings.conn_max and self.server is not None:
            self.server.close()
            self.server = None

    def closed(self, conn: ClientSide) -> None:
        """A client connection ended; accept again when there is room."""
        self.conns.discard(conn)
        if (
            self.server is None
            and self.accepting
            and not self.stopping
            and len(self.conns) < self.core.settings.conn_max
        ):
            self.accepting = False
            self.resuming = self.loop.create_task(self.serve())

    async def serve(self) -> None:
        """Accept on a duplicate of the listening socket.

        Closing an asyncio server closes its socket; serving a dup() lets -x stop accepting
        while the original keeps the kernel backlog, where waiting clients queue as in pen.
        """
        assert self.listen_sock is not None
        sock = self.listen_sock.dup()
        settings = self.core.settings
        # asyncio's selector loop accepts up to ``backlog`` connections per readiness event
        # and calls listen(backlog): give it -m, then set the kernel backlog (-q) again.
        accepts = settings.multi_accept
        batch = accepts if accepts is not None else settings.backlog
        if sock.family == socket.AF_UNIX:
            server = await self.loop.create_unix_server(
                self._client_side, sock=sock, ssl=self.ssl, backlog=batch
            )
        else:
            server = await self.loop.create_server(
                self._client_side, sock=sock, ssl=self.ssl, backlog=batch
            )
        if batch != settings.backlog:
            self.listen_sock.listen(settings.backlog)
        self.server = server
        self.accepting = True

    def _client_side(self) -> ClientSide:
        """A protocol for an accepted client; a dumping one from debug level 3 on."""
        if self.core.settings.debug >= DUMP_LEVEL:
            return DumpingClientSide(self)
        return ClientSide(self)

    # -- connect timeouts -------------------------------------------------------------------
    def connect_started(self, conn: ClientSide) -> None:
        """Note an upstream connect; the sweep cancels it after the -t timeout."""
        self.connecting[conn] = self.loop.time()

    def connect_ended(self, conn: ClientSide) -> None:
        """The connect finished either way."""
        self.connecting.pop(conn, None)

    def _sweep_connects(self) -> None:
        """Cancel connects older than the timeout.

        One periodic timer instead of a timer per connection (a libuv handle each under
        uvloop); connects are kept in start order, so the scan stops at the first young one.
        A connect thus times out between ``timeout`` and ``timeout + SWEEP`` seconds.
        """
        limit = self.loop.time() - self.core.settings.timeout
        expired = []
        for conn, started in self.connecting.items():
            if started > limit:
                break
            expired.append(conn)
        for conn in expired:
            self.connecting.pop(conn, None)
            if conn.connecting is not None:
                conn.connecting.cancel()
        self.sweeper = self.loop.call_later(SWEEP, self._sweep_connects)

    # -- hooks for the command interpreter -------------------------------------------------
    def reopen_log(self) -> None:
        """Point the log at settings.log and reopen it."""
        self.log.target = self.core.settings.log
        self.log.reopen()

    def request_exit(self) -> None:
        """Stop as on SIGTERM."""
        self.stop_event.set()

    def status_page(self) -> str | None:
        """Write the -w file and return its HTML."""
        path = self.core.settings.web_stats
        if not path:
            return None
        page = render_status(self.core, len(self.conns), time.time())
        with open(path, "w", encoding="utf-8") as out:
            out.write(page)
        return page

    def pid(self) -> int:
        """This process's id."""
        return os.getpid()

    def debug_changed(self) -> None:
        """Log debug messages from now on if the level is above 0 (dumps from 3 on)."""
        level = logging.DEBUG if self.core.settings.debug else logging.WARNING
        logging.getLogger("pen").setLevel(level)

    # -- signals -----------------------------------------------------------------------------
    def hangup(self) -> None:
        """SIGHUP: reopen the log file (rotation) and re-run the -F file."""
        try:
            self.log.reopen()
        except OSError as exc:
            logger.error("cannot reopen log %s: %s", self.log.target, exc)
        self.reread_config()

    def reread_config(self) -> None:
        """Run the -F file's commands again; their replies go to the debug log."""
        path = self.core.settings.config_file
        if not path:
            return
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as lines:
                for reply in run_lines(self.core, lines, time.time()):
                    logger.debug("%s", reply.rstrip("\n"))
        except OSError as exc:
            logger.error("cannot read %s: %s", path, exc)

    def user_stats(self) -> None:
        """SIGUSR1: write the -w status page (or log a one-line summary without -w)."""
        try:
            if self.status_page() is None:
                logger.info("%d connections, %d servers", len(self.conns), len(self.core.table))
        except OSError as exc:
            logger.error("cannot write %s: %s", self.core.settings.web_stats, exc)

    async def shutdown(self) -> None:
        """Stop accepting, let connections finish within the grace period, then cut them."""
        self.stopping = True
        self.sweeper.cancel()
        if self.server is not None:
            await close_server(self.server)
            self.server = None
        if self.listen_sock is not None:
            self.listen_sock.close()
        deadline = self.loop.time() + self.core.settings.grace
        while self.conns and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        # abort() closes a socket on the next loop turn, and a transport made just now
        # meets its protocol a turn later: cut every connection until none is left.
        deadline = self.loop.time() + CUT_WAIT
        turns = 0
        while (self.conns or turns < 2) and self.loop.time() < deadline:
            for conn in list(self.conns):
                conn.transport.abort()
                if conn.up is not None:
                    conn.up.abort()
            await asyncio.sleep(0)
            turns += 1
        self.log.close()


def drop_privileges(settings: Settings) -> None:
    """chroot (-j), then setgid/setuid to the -u user's primary group and uid, as pen does.

    :raises StartupError: unknown user or failed calls.
    """
    entry = None
    if settings.user:
        import pwd

        try:
            entry = pwd.getpwnam(settings.user)
        except KeyError:
            raise StartupError(f"unknown user {settings.user!r}") from None
    try:
        if settings.chroot:
            os.chroot(settings.chroot)
            os.chdir("/")
        if entry is not None:
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
    except OSError as exc:
        raise StartupError(f"cannot drop privileges: {exc}") from None


def write_pidfile(path: str) -> None:
    """Write the pid with no newline, as pen does (bytes: no codec lookup inside a chroot).

    :raises StartupError: the file cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"%d" % os.getpid())
        finally:
            os.close(fd)
    except OSError as exc:
        raise StartupError(f"cannot write pid file {path}: {exc.strerror}") from None


async def start_metrics(proxy: ProxyState, spec: str) -> asyncio.Server:
    """Serve the --metrics page on ``spec`` (``[host:]port`` or a path).

    :raises StartupError: the address cannot be bound.
    """
    from .config import parse_listen
    from .metrics import MetricsListener, render

    sock = open_listener(parse_listen(spec), 50)
    listener = MetricsListener(lambda: render(proxy.core, proxy.log, time.time()), proxy.loop)
    return await proxy.loop.create_server(listener.protocol, sock=sock)


async def serve_forever(core: PenState, on_ready: Callable[[], None] | None = None) -> None:
    """Run the balancer until TERM, INT or ``exit``; the caller has already daemonized.

    :param on_ready: called once the sockets, log and pid file are set up.

    :raises StartupError: sockets, TLS, privileges, log or pid file.
    """
    from .udp import UdpListener

    loop = asyncio.get_running_loop()
    settings = core.settings
    proxy = ProxyState(core, loop)
    core.hooks = proxy
    if settings.tls is not None:
        proxy.ssl = tls_context(settings.tls)
    assert settings.listen is not None
    control_server = None
    if settings.control:
        from .config import parse_listen

        control_sock = open_listener(parse_listen(settings.control), 50)
        control_server = await loop.create_server(lambda: ControlProtocol(proxy), sock=control_sock)
    metrics_server = await start_metrics(proxy, settings.metrics) if settings.metrics else None
    proxy.listen_sock = open_listener(settings.listen, settings.backlog, settings.udp)
    udp: UdpListener | None = None
    if settings.udp:
        udp = await UdpListener.start(proxy, proxy.listen_sock)
    else:
        await proxy.serve()
    drop_privileges(settings)
    try:
        proxy.reopen_log()
    except OSError as exc:
        raise StartupError(f"cannot open log {settings.log}: {exc}") from None
    if settings.pidfile:
        write_pidfile(settings.pidfile)
    for signum, action in (
        (signal.SIGTERM, proxy.stop_event.set),
        (signal.SIGINT, proxy.stop_event.set),
        (signal.SIGHUP, proxy.hangup),
        (signal.SIGUSR1, proxy.user_stats),
    ):
        loop.add_signal_handler(signum, action)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    logger.debug("pen serving on %s", settings.listen)
    # Everything allocated so far lives until exit: keep it out of the cyclic GC's scans.
    gc.freeze()
    if on_ready is not None:
        on_ready()
    try:
        await proxy.stop_event.wait()
    finally:
        if control_server is not None:
            control_server.close()
        if metrics_server is not None:
            metrics_server.close()
        if udp is not None:
            udp.close()
        await proxy.shutdown()
        if settings.pidfile:
            with contextlib.suppress(OSError):
                os.unlink(settings.pidfile)
