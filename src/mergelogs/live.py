"""penlogd's merge: pen's netlog datagrams and web servers' log lines in, merged lines out
(pure: no socket, no clock of its own; the driver hands in datagrams with ``now``).

Design notes
------------
The matcher is mergelogs' own: a :class:`PenWindow` of pen entries, one-to-one and
time-aware, and a :class:`ClockOffset` per web server. The netlog datagram has no time, so an
entry is stamped with ``now`` on arrival and becomes the pen.log line pen would have written
(:func:`pen.penlog.format_line`, the one definition): a request of 100 bytes or more is cut
on both sides alike and matches, unlike C penlogd.

pen sends its entry when a request starts and the web server its line when it ends, but
datagrams may arrive in any order, so a line waits ``hold`` seconds after arrival; then it
votes on its server's clock offset, takes its entry (or keeps its own client) and goes out.
Lines go out in arrival order, a batch per call.

Bounds: lines waiting (PENDING_MAX; past it the oldest goes out early, matched as well as
it can be: never dropped), web servers with a clock (SOURCES_MAX), and entries held: each
is kept ``keep`` seconds (the longest request whose line can still find its entry, since the
line comes when the request ends), and past ``entries_max`` the oldest seconds go first. The
window forgets whole generations (a quarter of ``jitter``), so it may hold one generation's
entries beyond the bound.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass

from mergelogs.accesslog import AccessParser, with_client
from mergelogs.clock import ClockOffset
from mergelogs.merge import CALIBRATION, request_key
from mergelogs.penwindow import Key, PenWindow, normalize_address
from pen.penlog import format_line

PENDING_MAX = 65536
"""Lines waiting for their entries at most."""
SOURCES_MAX = 4096
"""Web servers whose clock offsets are kept (a spoofing flood cannot grow them further)."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """How penlogd matches (its options)."""

    hold: float = 2.0
    """Seconds a line waits for its pen entry after it arrived."""
    jitter: int = 60
    """The widest distance in seconds between a line's instant and its entry."""
    radius: int = 60
    """The widest clock offset in seconds between pen's host and a web server."""
    keep: int = 3600
    """Seconds an entry waits for its line: the longest request that is still matched."""
    entries_max: int = 100_000
    """Pen entries held (``-n``)."""


@dataclass(slots=True)
class LiveStats:
    """What penlogd has seen."""

    entries: int = 0
    unusable: int = 0
    """Datagrams starting with '+' that are not pen entries with IP addresses."""
    lines: int = 0
    matched: int = 0
    unmatched: int = 0
    forgotten: int = 0
    """Entries forgotten early for ``entries_max``."""


@dataclass(slots=True)
class _Waiting:
    due: float
    raw: bytes
    key: Key | None
    epoch: int
    clock: ClockOffset | None


def _address(field: bytes) -> str | None:
    """The text of an IP address field, None for anything else."""
    try:
        return str(ipaddress.ip_address(field.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None


class LiveMerger:
    """The merged log as datagrams arrive: feed :meth:`receive`, call :meth:`due` when
    :meth:`next_due` says, :meth:`flush` at the end; each returns the lines to write."""

    def __init__(self, settings: LiveSettings | None = None) -> None:
        self.settings = settings = settings or LiveSettings()
        self.stats = LiveStats()
        self._window = PenWindow((), settings.jitter)
        self._parser = AccessParser()
        self._clocks: dict[str, ClockOffset] = {}
        self._voted: dict[str, int] = {}
        self._pending: deque[_Waiting] = deque()
        self._seconds: deque[list[int]] = deque()
        """[second, entries] of the entries held, oldest first."""
        self._held = 0

    def receive(self, data: bytes, source: str, now: float) -> list[bytes]:
        """Take one datagram from ``source`` (an IP address) at ``now`` (epoch seconds).

        The lines due before it came go out first, without it.
        """
        out = self.due(now)
        if data[:2] == b"+ ":
            self._entry(data, int(now))
        else:
            for line in data.split(b"\n"):
                if line:
                    self._line(line + b"\n", source, now)
        while len(self._pending) > PENDING_MAX:
            out.append(self._release(self._pending.popleft()))
        return out

    def due(self, now: float) -> list[bytes]:
        """The lines whose wait is over at ``now``, in arrival order."""
        pending = self._pending
        out = []
        while pending and pending[0].due <= now:
            out.append(self._release(pending.popleft()))
        settings = self.settings
        arrived = pending[0].due - settings.hold if pending else now  # of the oldest waiting
        self._forget(int(min(now, arrived)) - settings.keep)
        return out

    def next_due(self) -> float | None:
        """When the oldest waiting line is due; None when none waits."""
        return self._pending[0].due if self._pending else None

    def flush(self) -> list[bytes]:
        """Every waiting line, matched now (penlogd stops)."""
        out = [self._release(waiting) for waiting in self._pending]
        self._pending.clear()
        return out

    def _entry(self, data: bytes, second: int) -> None:
        """Store a netlog datagram ``+ client server request`` as pen.log would have it."""
        parts = data[2:].rstrip(b"\n").split(b" ", 2)
        client = _address(parts[0])
        server = _address(parts[1]) if len(parts) == 3 else None
        if client is None or server is None or not parts[2]:
            self.stats.unusable += 1  # a Unix peer, an error text, or not pen's at all
            return
        self.stats.entries += 1
        self._window.add((format_line(client, second, server, parts[2]),))
        seconds = self._seconds
        if seconds and seconds[-1][0] == second:
            seconds[-1][1] += 1
        else:
            seconds.append([second, 1])
        self._held += 1
        if self._held > self.settings.entries_max:
            while self._held > self.settings.entries_max:
                count = seconds.popleft()[1]
                self._held -= count
                self.stats.forgotten += count
            self._window.evict(seconds[0][0] if seconds else second + 1)

    def _forget(self, before: int) -> None:
        """Forget the entries older than ``before``."""
        seconds = self._seconds
        if seconds and seconds[0][0] < before:
            while seconds and seconds[0][0] < before:
                self._held -= seconds.popleft()[1]
            self._window.evict(before)

    def _line(self, raw: bytes, source: str, now: float) -> None:
        """Queue a web server's line until its entry has had time to arrive."""
        self.stats.lines += 1
        epoch, _, request = self._parser.fields(raw)
        due = now + self.settings.hold
        if epoch is None or not request or request == b"-":
            self._pending.append(_Waiting(due, raw, None, 0, None))
            return
        server = normalize_address(source)
        clock = self._clocks.get(server)
        if clock is None:
            if len(self._clocks) >= SOURCES_MAX:
                self._clocks.clear()
                self._voted.clear()
            clock = self._clocks[server] = ClockOffset(self.settings.radius)
        self._pending.append(_Waiting(due, raw, (server, request_key(request)), epoch, clock))

    def _release(self, waiting: _Waiting) -> bytes:
        """The output line of a waiting line: its client restored if an entry fits."""
        key, clock = waiting.key, waiting.clock
        if key is None or clock is None:
            self.stats.unmatched += 1
            return waiting.raw
        window = self._window
        epoch = waiting.epoch
        # Every line votes while the offset is being learnt, then one a second (as mergelogs).
        if clock.votes < CALIBRATION or self._voted.get(key[0]) != epoch:
            self._voted[key[0]] = epoch
            window.vote(key, epoch, clock)
        client = window.take(key, epoch, clock)
        if client is None:
            self.stats.unmatched += 1
            return waiting.raw
        self.stats.matched += 1
        return with_client(waiting.raw, client)
