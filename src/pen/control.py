"""The -C control port: read one command line, check control_acl, run it, reply and close.

Life of a control connection:

    connection_made -- control_acl denies the peer: closed at once
                    -- MAX_OPEN connections already open: the OLDEST one is aborted
                       (new ones always get in, so a flood of silent clients cannot lock
                       the operator out; the operator's penctl sends at once and is done)
                    -- a READ_TIMEOUT timer starts
    data_received   -- bytes collect until a CR or LF; MAX_COMMAND bytes without one:
                       refused with an error line
    line complete or EOF -> execute() -> reply written -> close (after the reply drains)
    timer fires (silent client, or one that never reads its reply) -> abort

Unlike pen, which does one blocking recv() per control connection and so stops all traffic
while a client stays silent, nothing here waits: each step is a callback, and the cap keeps
silent clients from using up the process's file descriptors.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, cast

from .commands import execute

if TYPE_CHECKING:
    from .app import ProxyState

MAX_COMMAND = 4095
"""pen reads at most this many bytes of a command; a longer line is refused."""

READ_TIMEOUT = 5.0
"""Seconds a control client has to send its line and read the reply."""

MAX_OPEN = 64
"""Control connections open at once; the oldest is dropped for a new one."""


class ControlPort:
    """The open control connections, oldest first, and their limits."""

    __slots__ = ("proxy", "open", "timeout", "max_open", "dropped", "timed_out")

    def __init__(self, proxy: ProxyState, timeout: float = READ_TIMEOUT,
                 max_open: int = MAX_OPEN) -> None:
        self.proxy = proxy
        self.open: OrderedDict[ControlProtocol, None] = OrderedDict()
        self.timeout = timeout
        self.max_open = max_open
        self.dropped = 0
        self.timed_out = 0

    def protocol(self) -> ControlProtocol:
        """The protocol factory for the control listener."""
        return ControlProtocol(self)

    def admit(self, conn: ControlProtocol) -> None:
        """Register a new connection, dropping the oldest beyond the cap."""
        while len(self.open) >= self.max_open:
            oldest, _ = self.open.popitem(last=False)
            self.dropped += 1
            oldest.abort()
        self.open[conn] = None

    def forget(self, conn: ControlProtocol) -> None:
        """A connection ended."""
        self.open.pop(conn, None)


class ControlProtocol(asyncio.Protocol):
    """One penctl connection."""

    __slots__ = ("port", "transport", "buffer", "timer", "done")

    def __init__(self, port: ControlPort) -> None:
        self.port = port
        self.buffer = b""
        self.done = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires per control connection: refuse peers that control_acl denies."""
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else ""
        core = self.port.proxy.core
        if not core.acls.permits(core.settings.control_acl, address):
            self.abort()
            return
        self.port.admit(self)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.port.timeout, self._expired)

    def data_received(self, data: bytes) -> None:
        """Fires per chunk: run the command once its line is complete."""
        if self.done:
            return
        self.buffer += data
        if b"\n" in self.buffer or b"\r" in self.buffer:
            self._run()
        elif len(self.buffer) > MAX_COMMAND:
            self._reply(f"command longer than {MAX_COMMAND} bytes refused\n")

    def eof_received(self) -> bool:
        """Fires when penctl half-closes without a newline."""
        if not self.done:
            self._run()
        return True

    def _run(self) -> None:
        line = self.buffer[: MAX_COMMAND + 1].decode("utf-8", "surrogateescape")
        if len(line.split("\n", 1)[0].split("\r", 1)[0]) > MAX_COMMAND:
            self._reply(f"command longer than {MAX_COMMAND} bytes refused\n")
            return
        self._reply(execute(self.port.proxy.core, line, time.time()))

    def _reply(self, text: str) -> None:
        self.done = True
        self.buffer = b""
        self.transport.write(text.encode("utf-8", "surrogateescape"))
        self.transport.close()

    def _expired(self) -> None:
        """Fires READ_TIMEOUT after connect: the client is silent or does not read."""
        self.timer = None
        self.port.timed_out += 1
        self.abort()

    def abort(self) -> None:
        """Drop the connection now."""
        self.done = True
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fires when the connection is closed, by either side."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.port.forget(self)
