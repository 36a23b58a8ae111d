"""The running balancer: sockets, signals, privileges and graceful shutdown around a PenState."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import resource
import signal
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from . import upstream
from .commands import run_file
from .config import ListenSpec, Settings, TlsSettings
from .conntable import (
    CONNECTED,
    CONNECTING,
    EOF_DOWN,
    EOF_UP,
    ConnectionInfo,
    ConnectionTable,
    LiveTraffic,
)
from .control import ControlPort
from .errors import PenError, StartupError
from .httpscan import HEAD_TIMEOUT, REFUSALS
from .idle import IdleSweep
from .idlers import Idlers
from .logsink import PenLog
from .servers import Server
from .state import PenState
from .statuspage import ConnectionRow, render_status
from .tcp import NO_DESCRIPTORS, ClientSide
from .trace import client_class

logger = logging.getLogger("pen.error")

SWEEP = 0.2
"""Seconds between scans for timed-out upstream connects."""

EVENTS = (*(refusal.name for refusal in REFUSALS), "idle_timeout", "out_of_descriptors", "shed")
"""What ProxyState.counts counts (--metrics' pen_events_total): refused requests by reason,
idle closes, descriptor shortages, clients let go to free a descriptor."""

IDLE_SWEEP = 1.0
"""Seconds between scans for idle connections and slow request heads."""

RETRY = 0.25
"""Seconds before an upstream connect that found no descriptor is tried again."""

FD_RESERVE = 16
"""Descriptors kept free beside two per connection: log reopen, control clients, netlog."""


def descriptor_cap() -> int:
    """How many connections (two descriptors each) fit the soft RLIMIT_NOFILE left now.

    Pausing the accepts at this cap, as -x does, leaves waiting clients in the kernel backlog;
    at EMFILE itself uvloop would accept and drop them unseen and asyncio would log each one.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = FD_RESERVE
    return max(1, (soft - used - FD_RESERVE) // 2)

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


def stop_accepting(server: asyncio.Server) -> None:
    """Accept nothing more on ``server`` from now on, and close it on the next loop turn.

    Python 3.11's asyncio makes an accepted socket a transport on the next loop turn and
    drops it, with its socket open, if the server was closed by then: the accepts under way
    become connections first.
    """
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    loop.call_soon(server.close)


async def close_server(server: asyncio.Server) -> None:
    """Stop accepting, let the accepts under way become connections, then close ``server``."""
    stop_accepting(server)
    await asyncio.sleep(0)


class ProxyState:
    """The one object the protocols share: tables, log, open connections, listener control."""

    def __init__(self, core: PenState, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop
        settings = core.settings
        self.log = PenLog(None)
        self.conns: ConnectionTable[ClientSide] = ConnectionTable()
        self.idlers = Idlers(self)
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
        self.counts = dict.fromkeys(EVENTS, 0)
        """Named events: each refusal, idle and head timeouts, descriptor shortages."""
        self.fd_cap = sys.maxsize
        self.waiting: deque[ClientSide] = deque()
        """Clients accepted beyond -x or the descriptor cap in a burst, paused until one closes."""
        self.starved: dict[ClientSide, float] = {}
        """Clients whose upstream connect found no descriptor, with the time it first failed."""
        self._fd_logged = -math.inf
        self.idle = IdleSweep()
        self.idler = loop.call_later(IDLE_SWEEP, self._sweep_idle)
        self.client_class = client_class(settings.debug)

    @property
    def http(self) -> bool:
        """-H / ``http``: rewrite X-Forwarded-For and -Proto."""
        return self.core.settings.http

    def count(self, name: str) -> None:
        """Count one named event."""
        self.counts[name] = self.counts.get(name, 0) + 1

    # -- connection accounting, the -x limit and the descriptor cap ------------------------
    def opened(self, conn: ClientSide) -> bool:
        """A client connection was accepted; stop accepting when the table is full.

        :returns: False beyond the limit: a loop accepts a whole burst before the first
            connection_made can pause it (asyncio's up to the -m/-q backlog at once), and the
            connections beyond -x, or beyond the descriptors their upstreams need, wait,
            paused, until one closes.
        """
        conns = self.conns
        conns.add(conn)
        count = len(conns) - len(self.waiting)
        limit = min(self.core.settings.conn_max, self.fd_cap)
        if count >= limit and self.server is not None:
            stop_accepting(self.server)
            self.server = None
        if count >= self.fd_cap:
            self.out_of_descriptors(None)
        if count > limit:
            conn.transport.pause_reading()
            self.waiting.append(conn)
            return False
        return True

    def closed(self, conn: ClientSide) -> None:
        """A client connection ended; let a waiting one go on, accept again when there is room."""
        self.conns.discard(conn)
        if self.starved:
            self.starved.pop(conn, None)
        waiting = self.waiting
        if waiting and conn in waiting:
            waiting.remove(conn)
        if waiting or self.server is None:
            self.make_room()

    def make_room(self) -> None:
        """Let waiting clients go on, and accept again, as far as -x and the descriptor cap
        allow (after a close, or when ``conn_max`` grew)."""
        limit = min(self.core.settings.conn_max, self.fd_cap)
        waiting = self.waiting
        while waiting and len(self.conns) - len(waiting) < limit:
            ready = waiting.popleft()
            ready.transport.resume_reading()
            ready.begin()
        if self.server is None and self.accepting and not self.stopping and \
                len(self.conns) < limit:
            self.accepting = False
            self.resuming = self.loop.create_task(self.serve())

    def conn_max_changed(self) -> None:
        """``conn_max N`` grew -x: the room is used at once, not at the next close."""
        self.make_room()

    async def serve(self) -> None:
        """Accept on a duplicate of the listening socket.

        Closing an asyncio server closes its socket; serving a dup() lets -x stop accepting
        while the original keeps the kernel backlog, where waiting clients queue as in pen.
        """
        while True:
            listen_sock = self.listen_sock
            assert listen_sock is not None
            server = await self._accept_on(listen_sock)
            if self.listen_sock is listen_sock:
                break
            server.close()  # ``listen ADDR`` moved the listener meanwhile: serve the new one
        self.server = server
        self.accepting = True

    async def _accept_on(self, listen_sock: socket.socket) -> asyncio.Server:
        sock = listen_sock.dup()
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
            listen_sock.listen(settings.backlog)
        return server

    def move_listener(self, spec: ListenSpec) -> None:
        """``listen ADDR``: open the new listener (same backlog and TLS), then close the old.

        Open connections go on; clients still in the old kernel backlog are reset, as when
        pen closes its listener. A listener paused by -x or the descriptor cap stays paused:
        ``closed`` serves the new one when there is room, as a serve() already starting does.

        :raises PenError: -U (one datagram socket is both listener and reply path), or the
            address cannot be bound.
        """
        settings = self.core.settings
        if settings.udp:
            raise PenError("a UDP listener cannot be moved at runtime; restart pen")
        new = open_listener(spec, settings.backlog)
        old, self.listen_sock = self.listen_sock, new
        if self.server is not None:
            stop_accepting(self.server)
            self.server = None
            self.accepting = False
            self.resuming = self.loop.create_task(self.serve())
        if old is not None:
            old.close()

    def _client_side(self) -> ClientSide:
        """A protocol for an accepted client: plain, or tracing/dumping at the -d level."""
        return self.client_class(self)

    def out_of_descriptors(self, error: OSError | None) -> None:
        """No descriptor for a client or an upstream: count it, log it once a second at most."""
        self.count("out_of_descriptors")
        now = time.monotonic()
        if now - self._fd_logged >= 1.0:
            self._fd_logged = now
            cause = error.strerror if error is not None else "descriptor limit reached"
            logger.warning("out of file descriptors (%s) with %d connections: accepting paused",
                           cause, len(self.conns))

    def retry_later(self, conn: ClientSide, index: int, server: Server) -> None:
        """Try ``conn``'s connect again in RETRY s; give up (close) after the -t timeout.

        A client waiting beyond the cap holds a descriptor an older one needs: the newest
        waiting client is let go, so connections already accepted come first.
        """
        if self.waiting:
            self.count("shed")
            self.waiting.pop().transport.close()
        now = self.loop.time()
        first = self.starved.setdefault(conn, now)
        if now - first >= self.core.settings.timeout:
            self.starved.pop(conn, None)
            conn.transport.close()
        else:
            self.loop.call_later(RETRY, conn.retry, index, server)

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's exception handler: EMFILE/ENFILE on accept is expected under load.

        asyncio stops accepting for a second by itself, so nothing spins; only the log is ours.
        """
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in NO_DESCRIPTORS:
            self.out_of_descriptors(error)
            return
        callback = getattr(context.get("handle"), "_callback", None)
        if isinstance(error, ValueError) and getattr(callback, "__name__", "") == "_start_serving":
            return  # asyncio's retry after EMFILE, on a listener -x or the cap closed since
        loop.default_exception_handler(context)

    # -- idle connections and slow request heads -------------------------------------------
    def _activity(self) -> Iterator[tuple[ClientSide, int, int]]:
        """(connection, bytes both ways, heads completed while a head is due else -1)."""
        for conn in self.conns:
            if conn.up is None:
                continue  # still connecting: the connect timeout's business
            upstream = conn.upstream
            scanner = conn.scanner
            yield (conn, conn.sent + (upstream.received if upstream is not None else 0),
                   scanner.heads if scanner is not None and scanner.in_head else -1)

    def _sweep_idle(self) -> None:
        """Close connections idle for ``idle_timeout`` s; answer 408 to heads over the limit."""
        self.idler = self.loop.call_later(IDLE_SWEEP, self._sweep_idle)
        settings = self.core.settings
        idle = settings.idle_timeout
        head = settings.head_timeout if self.http or self.log.active else 0.0
        if not idle and not head:
            return
        expired, slow = self.idle.sweep(self._activity(), self.loop.time(), idle, head)
        for conn in expired:
            self.count("idle_timeout")
            conn.expire()
        for conn in slow:
            conn.refuse(HEAD_TIMEOUT)

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
    def reopen_log(self, target: str | None) -> None:
        """Switch pen.log to ``target``: the new one is opened before the old one is closed,
        so a target that cannot be opened leaves the old log open and logging."""
        if target is None:
            self.log.target = None
            self.log.reopen()
            return
        new = PenLog(target)
        new.written, new.dropped = self.log.written, self.log.dropped  # counters go on
        self.log.close()
        self.log = new

    def request_exit(self) -> None:
        """Stop as on SIGTERM."""
        self.stop_event.set()

    def status_page(self) -> str | None:
        """Write the -w file and return its HTML (in place, as pen: the -u user may own only
        the file, not its directory)."""
        path = self.core.settings.web_stats
        if not path:
            return None
        page = render_status(self.core, self.connection_rows(), self.live_traffic(),
                             time.time())
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
        self.client_class = client_class(self.core.settings.debug)

    def connection(self, number: int) -> ConnectionInfo | None:
        """``connection N``: pen's fields for an open connection."""
        conn = self.conns.numbered(number)
        if conn is None:
            return None
        state = _state_bits(conn)
        pend = conn.held + conn.transport.get_write_buffer_size()
        if conn.up is not None:
            pend += conn.up.get_write_buffer_size()
        addresses = [c.address for c in self.core.clients]
        client = addresses.index(conn.address) if conn.address in addresses else -1
        return ConnectionInfo(state, _fileno(conn.transport), _fileno(conn.up), client,
                              conn.index, pend)

    def close_connection(self, number: int) -> None:
        """``close N``: abort both sides of connection N."""
        conn = self.conns.numbered(number)
        if conn is not None:
            if conn.up is not None:
                conn.up.abort()
            conn.transport.abort()

    def live_traffic(self) -> LiveTraffic:
        """``servers``/``recent``: bytes of the open connections (added to the tables when
        they close)."""
        by_server: dict[int, tuple[int, int]] = {}
        by_client: dict[str, tuple[int, int]] = {}
        for conn in self.conns:
            if conn.up is None or conn.released:
                continue
            sent = conn.sent
            received = conn.upstream.received if conn.upstream is not None else 0
            to_server, from_server = by_server.get(conn.index, (0, 0))
            by_server[conn.index] = (to_server + sent, from_server + received)
            to_client, from_client = by_client.get(conn.address, (0, 0))
            by_client[conn.address] = (to_client + received, from_client + sent)
        return LiveTraffic(by_server, by_client)

    def socket_owner(self, fd: int) -> int:
        """``socket FD``: the connection using descriptor FD."""
        for number, conn in self.conns.by_number():
            if fd in (_fileno(conn.transport), _fileno(conn.up)):
                return number
        return -1

    def connection_rows(self) -> list[ConnectionRow]:
        """The open connections for the status page."""
        rows = []
        for number, conn in self.conns.by_number():
            state = "open" if _state_bits(conn) & CONNECTED else "connecting"
            received = conn.upstream.received if conn.upstream is not None else 0
            rows.append(ConnectionRow(number, conn.address, conn.index, state, conn.sent,
                                      received))
        return rows

    def idlers_changed(self) -> int:
        """``idlers N``: open or close idle upstream connections."""
        return self.idlers.adjust()

    def source_error(self, address: str) -> str | None:
        """``source IP``: can upstream sockets bind there?"""
        return upstream.source_error(address)

    def transparent_error(self) -> str | None:
        """``transparent``: can this process set IP_TRANSPARENT?"""
        return upstream.transparent_error()

    @property
    def fastclose_up(self) -> bool:
        """tcp_fastclose up|both: the server's EOF closes the whole connection."""
        return self.core.settings.tcp_fastclose in ("up", "both")

    @property
    def fastclose_down(self) -> bool:
        """tcp_fastclose down|both: the client's EOF closes the whole connection."""
        return self.core.settings.tcp_fastclose in ("down", "both")

    # -- signals -----------------------------------------------------------------------------
    def hangup(self) -> None:
        """SIGHUP: reopen the log file (rotation) and re-run the -F file."""
        target = self.core.settings.log
        if target and not PenLog.is_netlog(target):
            try:
                self.reopen_log(target)
            except OSError as exc:
                logger.error("cannot reopen log %s (still logging to the old file): %s",
                             target, exc.strerror or exc)
        self.reread_config()

    def reread_config(self) -> None:
        """Run the -F file's commands again; their replies go to the debug log."""
        path = self.core.settings.config_file
        if not path:
            return
        try:
            for reply in run_file(self.core, path, time.time()):
                logger.debug("%s", reply.rstrip("\n"))
        except (OSError, PenError) as exc:
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
        self.idler.cancel()
        self.idlers.close()
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


def check_upstream_settings(settings: Settings) -> None:
    """``source`` and ``transparent`` given by -o or -F, checked as the control port does.

    :raises StartupError: upstream sockets could not be set up that way.
    """
    error = upstream.source_error(settings.source) if settings.source else None
    if error is not None:
        raise StartupError(f"unable to set source address to '{settings.source}': {error}")
    error = upstream.transparent_error() if settings.transparent else None
    if error is not None:
        raise StartupError(f"transparent: {error}")


def _state_bits(conn: ClientSide) -> int:
    """pen's connection state bits (see conntable) for ``connection N``."""
    state = CONNECTED if conn.up is not None else CONNECTING
    return state | (EOF_UP if conn.eof_up else 0) | (EOF_DOWN if conn.eof_down else 0)


def _fileno(transport: asyncio.BaseTransport | None) -> int:
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock.fileno() if sock is not None else -1


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
    listener = MetricsListener(lambda: render(proxy.core, proxy.log, time.time(), proxy.counts),
                               proxy.loop)
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
    check_upstream_settings(settings)
    if settings.tls is not None:
        proxy.ssl = tls_context(settings.tls)
    assert settings.listen is not None
    control_server = None
    if settings.control:
        from .config import parse_listen

        control_sock = open_listener(parse_listen(settings.control), 50)
        control = ControlPort(proxy)
        if control_sock.family == socket.AF_UNIX:
            control_server = await loop.create_unix_server(control.protocol, sock=control_sock)
        else:
            control_server = await loop.create_server(control.protocol, sock=control_sock)
    metrics_server = await start_metrics(proxy, settings.metrics) if settings.metrics else None
    proxy.listen_sock = open_listener(settings.listen, settings.backlog, settings.udp)
    udp: UdpListener | None = None
    if settings.udp:
        udp = await UdpListener.start(proxy, proxy.listen_sock)
    else:
        proxy.fd_cap = descriptor_cap()
        await proxy.serve()
    loop.set_exception_handler(proxy.loop_error)
    drop_privileges(settings)
    try:
        proxy.reopen_log(settings.log)
    except OSError as exc:
        raise StartupError(f"cannot open log {settings.log}: {exc}") from None
    proxy.idlers.adjust()
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
