"""The -C control port: read one command line, check control_acl, run it, reply and close."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

from .commands import execute

if TYPE_CHECKING:
    from .app import ProxyState

MAX_COMMAND = 4095
"""pen reads at most this many bytes of a command."""


class ControlProtocol(asyncio.Protocol):
    """One penctl connection; unlike pen it never blocks the loop while the client types."""

    __slots__ = ("proxy", "transport", "buffer")

    def __init__(self, proxy: ProxyState) -> None:
        self.proxy = proxy
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires per control connection: refuse peers that control_acl denies."""
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else ""
        core = self.proxy.core
        if not core.acls.permits(core.settings.control_acl, address):
            transport.close()

    def data_received(self, data: bytes) -> None:
        """Fires per chunk: run the command once its line is complete."""
        self.buffer += data
        if b"\n" in self.buffer or len(self.buffer) >= MAX_COMMAND:
            self._run()

    def eof_received(self) -> bool:
        """Fires when penctl half-closes without a newline."""
        if self.buffer:
            self._run()
        return False

    def _run(self) -> None:
        line = self.buffer[:MAX_COMMAND].decode("utf-8", "surrogateescape")
        self.buffer = b""
        reply = execute(self.proxy.core, line, time.time())
        self.transport.write(reply.encode("utf-8", "surrogateescape"))
        self.transport.close()
