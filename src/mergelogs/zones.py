"""Which zone a merge writes its times in: one clock in the output.

Design notes
------------
Analysers read ``%t``'s text, not its instant: webalizer and AWStats drop a record more than
1 h / 2 h behind the latest one they have read. A merge is ordered by instant, so when the
backends log in different zones their texts jump back and forth and most lines are lost.
So, unless told otherwise, a merge of inputs in different zones writes every time in the
first backend's zone, and a merge of inputs in one zone keeps every byte.

The choice is made before the first line goes out, from each input's first stamped line
(:func:`first_stamped` peeks it, holding at most PEEK_MAX lines, and hands the stream back
whole). Two inputs are in one zone when their first lines' offsets are equal, or when some
IANA zone has each offset at its line's instant: a DST change between the two first lines
(or inside one backend's log, which is never looked at) is not a difference. The first
backend's zone is its first line's offset, written as a fixed ``+hhmm``: naming the zone
with ``--tz`` follows its DST changes instead. The choice is a plain value in the merge's
settings, so worker processes write exactly what one process writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from mergelogs.accesslog import STAMP_LEN, AccessParser, stamp_epoch, stamp_offset, zone_offset

PEEK_MAX = 10_000
"""Lines read at most, per input, looking for its first stamped line."""


def first_stamped(lines: Iterator[bytes]) -> tuple[bytes | None, Iterator[bytes]]:
    """The first line with a usable stamp among the first PEEK_MAX (None if there is none),
    and the stream with every line read put back."""
    fields = AccessParser().fields
    held: list[bytes] = []
    found = None
    for raw in lines:
        held.append(raw)
        if fields(raw)[0] is not None:
            found = raw
            break
        if len(held) >= PEEK_MAX:
            break
    return found, itertools.chain(held, lines)


def line_stamp(raw: bytes) -> bytes:
    """The 26-byte ``%t`` of a line that has a usable one."""
    start = AccessParser().fields(raw)[1]
    return raw[start : start + STAMP_LEN]


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """The zone the output is written in (None: each line's own text) and why."""

    zone: str | None
    reason: str

    def describe(self) -> str:
        if self.zone is None:
            return f"times kept as logged ({self.reason})"
        return f"times written in {self.zone} ({self.reason})"


def choose_zone(stamps: list[bytes | None], tz: str | None, keep: bool) -> ZoneChoice:
    """The output zone, from each input's first stamp (None: no stamped line) in argument
    order, ``--tz`` (``--utc`` is ``+0000``) and ``--keep-zones``."""
    if keep:
        return ZoneChoice(None, "--keep-zones")
    if tz is not None:
        return ZoneChoice(tz, "--tz")
    found = [stamp for stamp in stamps if stamp is not None]
    if not found:
        return ZoneChoice(None, "no input has a time")
    first = found[0]
    offsets = sorted({_offset_text(stamp) for stamp in found})
    if all(one_zone(first, stamp) for stamp in found[1:]):
        return ZoneChoice(None, f"every input in one zone, {', '.join(offsets)}")
    return ZoneChoice(_offset_text(first),
                      f"the first backend's zone: the inputs start in {', '.join(offsets)}")


def one_zone(a: bytes, b: bytes) -> bool:
    """Could one server have written both stamps: the same offset, or a zone that has each
    offset at its stamp's instant (a DST change between them)?"""
    offset_a, offset_b = stamp_offset(a), stamp_offset(b)
    if offset_a == offset_b:
        return True
    epoch_a, epoch_b = stamp_epoch(a), stamp_epoch(b)
    if epoch_a is None or epoch_b is None:
        return False
    return any(zone_offset(epoch_a, zone) == offset_a and zone_offset(epoch_b, zone) == offset_b
               for zone in _iana_zones())


@lru_cache(maxsize=1)
def _iana_zones() -> tuple[ZoneInfo, ...]:
    """Every zone of the system's (or the tzdata package's) database."""
    zones = []
    for key in sorted(available_timezones()):
        try:
            zones.append(ZoneInfo(key))
        except (ValueError, OSError):  # a stray file in the zone directory
            continue
    return tuple(zones)


def _offset_text(stamp: bytes) -> str:
    return stamp[21:].decode("ascii")
