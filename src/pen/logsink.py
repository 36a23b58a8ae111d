"""Where pen.log lines go: an append-only file written one line per write (-l FILE), and the
UDP netlog (-l host:port). Each line is one os.write on an O_APPEND descriptor, so nothing is
lost when pen is killed and a rotated file is never written twice.
"""

from __future__ import annotations

import os
import socket

from .penlog import format_line, format_netlog


class PenLog:
    """The -l target; ``write`` is called once per logged request."""

    __slots__ = ("target", "_fd", "_net", "_netaddr", "written", "dropped")

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.written = 0
        """Lines (and datagrams) handed to the kernel, for --metrics."""
        self.dropped = 0
        """Lines the kernel refused (a full disk, a full socket buffer): lost, but counted."""
        self._fd = -1
        self._net: socket.socket | None = None
        self._netaddr: tuple[str, int] | None = None
        self.reopen()

    @staticmethod
    def is_netlog(target: str) -> bool:
        """pen's rule: a target with ':' that does not start with '/' is host:port."""
        return ":" in target and not target.startswith("/")

    @property
    def active(self) -> bool:
        """True when anything is logged at all."""
        return self._fd >= 0 or self._net is not None

    def reopen(self) -> None:
        """(Re)open ``target`` after rotation or after the ``log`` command changed it.

        The netlog socket survives ``no log``, as in pen.
        :raises OSError: the file cannot be opened.
        """
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        target = self.target
        if not target:
            return
        if self.is_netlog(target):
            host, _, port = target.rpartition(":")
            self._netaddr = (socket.gethostbyname(host), int(port))
            if self._net is None:
                self._net = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._net.setblocking(False)
            return
        self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, client: str, epoch: int, server: str, data: bytes) -> None:
        """Log one request (the file line and/or the netlog datagram)."""
        if self._fd >= 0:
            try:
                os.write(self._fd, format_line(client, epoch, server, data))
                self.written += 1
            except OSError:
                self.dropped += 1  # a full disk must not stop the proxy either
        if self._net is not None and self._netaddr is not None:
            try:
                self._net.sendto(format_netlog(client, server, data), self._netaddr)
                self.written += 1
            except OSError:
                self.dropped += 1  # a full socket buffer or an ICMP error must not stop the proxy

    def close(self) -> None:
        """Close the file and the netlog socket."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._net is not None:
            self._net.close()
            self._net = None
