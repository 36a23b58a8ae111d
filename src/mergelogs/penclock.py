"""Where pen's clock is: pen.log entries far from their neighbours' time are set aside, and a
step of pen's clock is followed.

Design notes
------------
pen.log is only nearly sorted, so an entry is *normal* when it lies within ``tolerance``
seconds of the newest normal entry (``top``). One that does not is a *suspect*, held back
while reading goes on:

- NORMAL  --suspect-->  SUSPECTS (held; normal entries are still admitted and counted)
- SUSPECTS: a suspect that ``AGAINST`` normal entries have followed is an outlier (a
  corrupted line, a far-future stamp): set aside, counted, reported with its line number.
- SUSPECTS --``CONFIRM`` suspects before that--> RUN: pen.log's time jumped and stayed. Either
  traffic paused (the backends jump too) or pen's clock stepped (the backends go on), and
  only the backends can tell. The run is held, and the merge holds its matching, until:
  - the backends reach the run's time: a pause; the run is the new normal as it is;
  - the backends go ``evidence`` seconds past the old normal first: if what they logged
    meanwhile is mostly the run's requests shifted back by the jump, pen's clock stepped and
    every later entry is shifted back (``step``); otherwise a pause (lines the backends
    logged without pen, monitoring say).

The first entries set the normal by their median, so a bad first line is an outlier too.
The class is pure: entries in, decisions out; the caller reads the file and the backends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

AGAINST = 16
"""Normal entries after a suspect that make it an outlier."""
CONFIRM = 16
"""Suspects that make a run (before AGAINST normal entries come)."""
START = 9
"""Entries whose median sets the first normal time."""
EVIDENCE_MIN = 8
"""Backend lines that must be seen before a step can be told from a pause."""

Entry = tuple[int, int, Hashable, bytes, bytes]
"""(pen.log line number, epoch, key, client, the line as read); the key is None for an entry
that only tells the time (another merge's backend)."""


@dataclass(slots=True)
class _Run:
    """A confirmed jump, held until the backends tell a pause from a step."""

    old_top: int
    entries: list[Entry]
    seen: Counter[Hashable] = field(default_factory=Counter)
    """Keys of the backend lines logged after ``old_top`` while the run is held."""

    @property
    def first(self) -> int:
        return self.entries[0][1]

    @property
    def jump(self) -> int:
        return self.first - self.old_top


class PenClock:
    """Sort pen.log entries into admitted, held and set aside (see the module notes).

    :param tolerance: seconds an entry may lie from the newest normal one.
    :param evidence: seconds of backend log past the old normal after which a held run is
        decided on what the backends logged.
    """

    def __init__(self, tolerance: int, evidence: int) -> None:
        self.tolerance = tolerance
        self.evidence = evidence
        self.top: int | None = None
        """The newest normal entry's time (shifted back by ``step``)."""
        self.step = 0
        """Seconds subtracted from entries: the sum of pen's clock steps followed."""
        self.steps = 0
        self.set_aside: list[Entry] = []
        """Outliers found since the caller last emptied this."""
        self.outliers = 0
        self._suspects: list[tuple[int, Entry]] = []
        """(normal entries admitted before it, the suspect), in file order."""
        self._normals = 0
        self._run: _Run | None = None

    @property
    def holding(self) -> bool:
        """True while a run waits for the backends' verdict."""
        return self._run is not None

    @property
    def suspecting(self) -> bool:
        """True while entries must go through :meth:`feed` (no normal time yet, suspects
        waiting or a run held)."""
        return self.top is None or bool(self._suspects) or self._run is not None

    def run_reaches(self) -> int | None:
        """While holding: the time the held run covers, on the backends' clock if it is a
        step (the caller reads pen.log only while the backends need more)."""
        if self._run is None:
            return None
        return self._run.entries[-1][1] - self._run.jump

    def feed(self, entry: Entry) -> list[Entry]:
        """One entry (epoch already shifted by ``step``); the entries admitted now."""
        if self.top is None:
            return self._start(entry)
        epoch = entry[1]
        if abs(epoch - self.top) <= self.tolerance:
            return self._normal(entry)
        if self._run is not None:
            self._run.entries.append(entry)
            return []
        self._suspects.append((self._normals, entry))
        if len(self._suspects) >= CONFIRM:
            self._run = _Run(self.top, [suspect for _, suspect in self._suspects])
            self._suspects.clear()
        return []

    def _start(self, entry: Entry) -> list[Entry]:
        self._suspects.append((0, entry))
        if len(self._suspects) < START:
            return []
        return self._settle_start()

    def _settle_start(self) -> list[Entry]:
        """Set the first normal time from the entries so far.

        The entries linked to their median by gaps of at most ``tolerance`` are the normal
        ones if they are most of them; earlier ones are admitted too (the log began before),
        later ones are suspects. Entries too sparse for that (a quiet log) are all admitted,
        as a held run would be.
        """
        entries = [entry for _, entry in self._suspects]
        self._suspects.clear()
        epochs = sorted(entry[1] for entry in entries)
        low = high = len(epochs) // 2
        while low and epochs[low] - epochs[low - 1] <= self.tolerance:
            low -= 1
        while high + 1 < len(epochs) and epochs[high + 1] - epochs[high] <= self.tolerance:
            high += 1
        if 2 * (high - low + 1) <= len(epochs):
            self.top = _recent(entries)
            self._normals += len(entries)
            return entries
        self.top = epochs[high]
        admitted = []
        for entry in entries:
            if entry[1] <= self.top:
                admitted.extend(self._normal(entry))
            else:
                admitted.extend(self.feed(entry))
        return admitted

    def _normal(self, entry: Entry) -> list[Entry]:
        assert self.top is not None
        self.top = max(self.top, entry[1])
        self._normals += 1
        suspects = self._suspects
        while suspects and self._normals - suspects[0][0] >= AGAINST:
            self._outlier(suspects.pop(0)[1])
        return [entry]

    def _outlier(self, entry: Entry) -> None:
        self.set_aside.append(entry)
        self.outliers += 1

    def observe(self, key: Hashable, epoch: int) -> None:
        """A backend line (its key, its time) entered the merge while a run is held."""
        run = self._run
        if run is not None and epoch > run.old_top:
            run.seen[key] += 1

    def settle(self, second: int, needed: int, final: bool = False) -> list[Entry]:
        """Decide a held run if the backends can tell by now; the entries admitted.

        :param second: the newest second of backend log entering the merge.
        :param needed: the latest pen time the merge needs loaded.
        :param final: the backends are all read: decide on what was seen.
        """
        run = self._run
        if run is None:
            return []
        if run.jump < 0:  # traffic cannot pause backwards: pen's clock was set back
            return self._follow(run, run.jump)
        if needed >= run.first and not final:
            return self._follow(run, 0)
        if final or second > run.old_top + self.evidence:
            return self._follow(run, run.jump if self._stepped(run, second) else 0)
        return []

    def _stepped(self, run: _Run, second: int) -> bool:
        """True if the backends logged mostly the run's requests, shifted back by the jump."""
        jump = run.jump
        wanted = Counter(key for _, epoch, key, _, _ in run.entries
                         if key is not None and epoch - jump <= second)
        seen = sum(run.seen.values())
        if seen < EVIDENCE_MIN:
            return False
        common = sum((run.seen & wanted).values())
        return 2 * common >= max(seen, sum(wanted.values()))

    def _follow(self, run: _Run, step: int) -> list[Entry]:
        """End the hold: the run, shifted back by ``step``, is the new normal."""
        self._run = None
        if step:
            self.step += step
            self.steps += 1
        admitted = [(n, epoch - step, key, client, line)
                    for n, epoch, key, client, line in run.entries]
        self.top = _recent(admitted)
        self._normals += len(admitted)
        suspects, self._suspects = self._suspects, []
        for _, entry in suspects:
            admitted.extend(self.feed(entry))
        return admitted

    def flush(self) -> list[Entry]:
        """pen.log is over: suspects are decided on what there is (a held run waits for
        the backends); the entries admitted."""
        if self.top is None:
            return self._settle_start() if self._suspects else []
        suspects, self._suspects = self._suspects, []
        if suspects and len(suspects) >= self._normals - suspects[0][0]:
            self._normals += len(suspects)  # most of the end of the log: a quiet end
            return [entry for _, entry in suspects]
        for _, entry in suspects:
            self._outlier(entry)
        return []


def _recent(entries: list[Entry]) -> int:
    """The time of the latest of ``entries`` in file order, robust to one bad one (the
    median of the last three)."""
    last = sorted(entry[1] for entry in entries[-3:])
    return last[(len(last) - 1) // 2]
