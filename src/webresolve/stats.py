"""The figures of a run, and the two ways they are reported (table rows, logresolve -s)."""

from __future__ import annotations

from dataclasses import dataclass

from webresolve.answers import Outcome


@dataclass(slots=True)
class Stats:
    """Counters of one run: lines, and the outcome of each distinct address."""

    lines: int = 0
    with_name: int = 0
    """Lines whose field was not an address (already a name, ``-``, anything else)."""
    addresses: int = 0
    hosts_hits: int = 0
    cache_hits: int = 0
    queries: int = 0
    strays: int = 0
    """Replies that matched no query in flight: late (after their timeout), duplicated or forged."""
    spilled: int = 0
    """Lines held back long enough to wait in the temporary file rather than in memory."""
    elapsed: float = 0.0
    resolved: int = 0
    nxdomain: int = 0
    no_answer: int = 0
    servfail: int = 0
    timeout: int = 0
    bogus: int = 0
    unverified: int = 0

    def count(self, outcome: Outcome) -> None:
        """Count one distinct address's outcome."""
        attr = _FIELDS[outcome]
        setattr(self, attr, getattr(self, attr) + 1)

    @property
    def failed(self) -> int:
        """Addresses the DNS never answered for (what ``--strict`` fails on)."""
        return self.servfail + self.timeout

    @property
    def unresolved(self) -> int:
        """Addresses that kept their address, for any reason."""
        return self.addresses - self.resolved

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for the ``--summary`` table."""
        rate = self.queries / self.elapsed if self.elapsed > 0 else 0.0
        return [
            ("lines", str(self.lines)),
            ("distinct addresses", str(self.addresses)),
            ("resolved", str(self.resolved)),
            ("NXDOMAIN", str(self.nxdomain)),
            ("no PTR", str(self.no_answer)),
            ("SERVFAIL", str(self.servfail)),
            ("timeouts", str(self.timeout)),
            ("bogus names", str(self.bogus)),
            ("not confirmed", str(self.unverified)),
            ("hosts file hits", str(self.hosts_hits)),
            ("cache hits", str(self.cache_hits)),
            ("queries sent", str(self.queries)),
            ("stray replies", str(self.strays)),
            ("lines held on disk", str(self.spilled)),
            ("queries/s", f"{rate:.0f}"),
            ("seconds", f"{self.elapsed:.2f}"),
        ]


_FIELDS = {
    Outcome.RESOLVED: "resolved",
    Outcome.NXDOMAIN: "nxdomain",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.SERVFAIL: "servfail",
    Outcome.TIMEOUT: "timeout",
    Outcome.BOGUS: "bogus",
    Outcome.UNVERIFIED: "unverified",
}


def statistics_text(stats: Stats) -> str:
    """The ``-s FILE`` text: logresolve's statistics lines first, then our own figures.

    logresolve counts per line ("Entries"), names already present ("With name"), lookups
    made ("Resolves"), those that found no name, its cache hits and cache size.
    """
    lines = [
        "logresolve Statistics:",
        f"Entries: {stats.lines}",
        f"    With name   : {stats.with_name}",
        f"    Resolves    : {stats.addresses - stats.hosts_hits - stats.cache_hits}",
    ]
    if stats.unresolved:
        lines.append(f"    - No reverse : {stats.unresolved}")
    if stats.unverified:
        lines.append(f"    - Double lookup failed : {stats.unverified}")
    lines += [
        f"Cache hits      : {stats.lines - stats.with_name - stats.addresses}",
        f"Cache size      : {stats.addresses}",
        "",
        "webresolve:",
    ]
    lines += [f"    {label:<19}: {value}" for label, value in stats.rows()]
    return "\n".join(lines) + "\n"
