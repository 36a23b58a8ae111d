"""A backend's clock offset from pen's, estimated from the logs alone (pure, no I/O).

Design notes
------------
Two kinds of evidence, both in seconds of "pen minus backend":

- **Votes** (:class:`ClockOffset`): a line votes, for every second ``s`` within ``radius``,
  with the share of its request's pen.log entries found ``s`` seconds from it. Lines of
  rare requests put their whole vote on the true offset; popular ones spread theirs thinly,
  so the peak stands out whenever some requests are rare.
- **Counts** (:func:`count_lag`): when every request is popular (an API farm at hundreds of
  requests per second), no request votes clearly. The number of lines a backend logs in each
  second still rises and falls with the number of entries pen logs for its requests, shifted
  by the offset, so the lag at which the two running totals keep in step is the offset.

Whole-second stamps turn a true offset of -1.4 s into differences of -1 (60%) and -2 (40%),
so either estimate is the centroid of the peak and its neighbours above the background: the
fraction says which seconds hold a line's entry (``first`` to ``last`` seconds from its own).
A guess is only made on enough evidence: a one-to-one matcher that starts on a wrong offset
keeps taking a popular request's entries from the wrong seconds.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence

REACH = 1.1
"""Seconds around a line's pen time where its own entry must be (1 s of rounding, latency)."""
MIN_VOTES = 4.0
"""Vote weight above the background that the peak needs before the votes are believed."""
MIN_CONTRAST = 3.0
"""How much less the best lag's fit must leave over than the lags two seconds away."""
MIN_SECONDS = 20
"""Seconds of counts needed before they are correlated."""
COUNT_SPAN = 120
"""Seconds of counts fitted at a time."""
COUNT_EVERY = 5
"""Seconds of log between count estimates until the offset is placed..."""
COUNT_REFRESH = 120
"""... and after: each costs milliseconds, and a placed offset only drifts."""


def peak_centroid(scores: Sequence[float], background: float) -> tuple[float, float]:
    """The fractional index of the peak of ``scores`` and its weight above ``background``."""
    peak = scores.index(max(scores))  # the first of equal peaks
    near = range(max(peak - 1, 0), min(peak + 2, len(scores)))
    weights = [max(scores[i] - background, 0.0) for i in near]
    total = sum(weights)
    if total <= 0:
        return float(peak), 0.0
    return sum(i * w for i, w in zip(near, weights, strict=True)) / total, total


def count_lag(
    lines: Mapping[int, int], entries: Mapping[int, int], first: int, last: int, radius: int
) -> float | None:
    """The lag in ``-radius..radius`` at which pen's entries per second for a backend add up
    to the backend's lines per second (its seconds ``first`` to ``last``); None if no lag
    stands out.

    At the true lag ``d + f`` pen has, by its second ``T + d``, logged every line the backend
    logged by its second ``T`` except the fraction ``f`` of second ``T``'s own: the gap
    between the two running totals is a constant minus ``f`` times that second's lines, plus
    a little noise. At any other lag whole seconds of lines wobble in the gap. So each lag's
    gap is fitted to the backend's lines per second; the lag with the least left over wins,
    its slope is the fraction, and it must leave far less over than the lags two away.
    """
    own = [lines.get(t, 0) for t in range(first, last + 1)]
    width = len(own)
    if width < MIN_SECONDS:
        return None
    mean = sum(own) / width
    centred = [count - mean for count in own]
    spread = sum(c * c for c in centred)
    if spread <= 0:
        return None
    totals = list(itertools.accumulate(own))
    theirs = [0, *itertools.accumulate(entries.get(t, 0)
                                       for t in range(first - radius, last + radius + 1))]
    fits = []
    for start in range(1, 2 * radius + 2):
        gaps = list(map(operator.sub, theirs[start : start + width], totals))
        slope = sum(map(operator.mul, gaps, centred)) / spread
        total = sum(gaps)
        squares = sum(map(operator.mul, gaps, gaps)) - total * total / width
        left_over = squares - slope * slope * spread
        fits.append((left_over, -slope))
    best = min((i for i in range(len(fits)) if -0.25 <= fits[i][1] <= 1.25),
               key=lambda i: fits[i][0], default=None)
    if best is None:
        return None
    beside = [fits[i][0] for i in (best - 2, best + 2) if 0 <= i < len(fits)]
    if not beside or fits[best][0] * MIN_CONTRAST > min(beside):
        return None
    return best - radius + min(max(fits[best][1], 0.0), 1.0)


class ClockOffset:
    """A backend's clock offset from pen's (pen minus backend, in seconds), from votes.

    ``lines`` counts the backend's lines per second of its own clock, for :func:`count_lag`
    while the votes say too little (``weak``).
    """

    __slots__ = ("radius", "tally", "votes", "offset", "first", "last", "lines", "requests",
                 "evidence", "weak", "settled", "_aged", "_counted_to")

    REFRESH_EVERY = 16
    HALF_LIFE = 120
    """Seconds of log after which old votes count half: clocks drift, and NTP steps them."""

    def __init__(self, radius: int) -> None:
        self.radius = radius
        self.tally = [0.0] * (2 * radius + 1)
        self.votes = 0
        self.offset = 0.0
        self.evidence = 0.0
        """Vote weight above the background at the last estimate."""
        self.weak = True
        """True while the votes are too thin to place the offset."""
        self.settled = False
        """True once either kind of evidence has placed the offset."""
        self.lines: dict[int, int] = {}
        self.requests: dict[bytes, int] = {}
        """The requests counted in ``lines``, each with the last second it was: pen's entries
        for others (bodies, header fragments, requests of lines that never came) are not
        counted against them."""
        self._aged: int | None = None
        self._counted_to: int | None = None
        self._bounds()

    def counted(self, epoch: int) -> None:
        """Note one more vote, by a line at ``epoch``; refresh the estimate now and then,
        and age the votes as the log's time passes."""
        self.votes += 1
        if self._aged is None:
            self._aged = epoch
        elif epoch - self._aged >= self.HALF_LIFE:
            self._aged = epoch
            self.tally[:] = [v / 2 for v in self.tally]
        if self.votes % self.REFRESH_EVERY == 0:
            self._estimate()

    def _bounds(self) -> None:
        self.first = math.ceil(self.offset - REACH)
        self.last = math.floor(self.offset + REACH)

    def _estimate(self) -> None:
        tally = self.tally
        background = sorted(tally)[len(tally) // 2]
        index, self.evidence = peak_centroid(tally, background)
        self.weak = self.evidence < MIN_VOTES
        if not self.weak:
            self.offset = index - self.radius
            self.settled = True
            self._bounds()

    def count_due(self, second: int) -> bool:
        """True when the counts should place (or re-check) the offset: while the votes are
        weak, every COUNT_EVERY seconds of log until placed, then every COUNT_REFRESH."""
        every = COUNT_REFRESH if self.settled else COUNT_EVERY
        if not self.weak or (self._counted_to is not None and second - self._counted_to < every):
            return False
        self._counted_to = second
        return True

    def forget(self, before: int) -> None:
        """Drop the line counts, and the requests last counted, before second ``before``."""
        for second in [s for s in self.lines if s < before]:
            del self.lines[second]
        for request in [r for r, s in self.requests.items() if s < before]:
            del self.requests[request]

    def from_counts(self, entries: Mapping[int, int], upto: int) -> None:
        """Estimate from counts: this backend's lines and pen's ``entries`` per second, over
        the last COUNT_SPAN seconds up to ``upto``."""
        first = max(upto - COUNT_SPAN, min(self.lines, default=upto))
        lag = count_lag(self.lines, entries, first, upto, self.radius)
        if lag is not None:
            self.offset = lag
            self.settled = True
            self._bounds()
