"""Figures and the logresolve-style statistics text."""

from __future__ import annotations

from webresolve.answers import Outcome
from webresolve.stats import Stats, statistics_text


def test_statistics_text_starts_like_logresolve() -> None:
    stats = Stats(lines=10, with_name=2, addresses=4, cache_hits=1, queries=3, elapsed=1.0)
    for outcome in (Outcome.RESOLVED, Outcome.RESOLVED, Outcome.NXDOMAIN, Outcome.TIMEOUT):
        stats.count(outcome)
    text = statistics_text(stats)
    assert text.startswith(
        "logresolve Statistics:\n"
        "Entries: 10\n"
        "    With name   : 2\n"
        "    Resolves    : 3\n"
        "    - No reverse : 2\n"
        "Cache hits      : 4\n"
        "Cache size      : 4\n"
    )
    assert "    timeouts           : 1\n" in text
    assert "    queries/s          : 3\n" in text
    assert stats.failed == 1 and stats.unresolved == 2
