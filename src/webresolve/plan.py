"""Pure decisions of a lookup: which server to ask next, for how long, and when we may send."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Attempts:
    """The attempts one address gets, in the spirit of dnspython's ``_Resolution``.

    Each attempt goes to the next nameserver in turn (so a dead server costs one attempt,
    not all of them) and waits at most ``timeout`` seconds, cut short by what is left of
    ``lifetime``. After ``1 + retries`` attempts or the lifetime, the address gives up.
    """

    servers: int
    retries: int
    timeout: float
    lifetime: float
    start: float
    first_server: int = 0
    made: int = 0

    def next(self, now: float) -> tuple[int, float] | None:
        """The (server index, seconds to wait) of the next attempt, or None to give up."""
        left = self.start + self.lifetime - now
        if self.made > self.retries or left <= 0:
            return None
        server = (self.first_server + self.made) % self.servers
        self.made += 1
        return server, min(self.timeout, left)


@dataclass(slots=True)
class RateLimiter:
    """A ceiling of ``rate`` queries per second, spacing sends evenly (no bursts).

    ``rate`` of 0 means no ceiling.
    """

    rate: float
    _next: float = field(default=0.0)

    def delay(self, now: float) -> float:
        """Reserve the next send slot; how many seconds to wait before sending."""
        if self.rate <= 0:
            return 0.0
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        return slot - now


def clamp_ttl(ttl: float, low: float, high: float) -> float:
    """A record's TTL held within ``--min-ttl`` and ``--max-ttl``."""
    return min(max(ttl, low), high)
