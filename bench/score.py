"""Score a merged log against a generated farm's ground truth: lines lost or duplicated, and
how often the client is one issue 2 accepts.

Design notes
------------
Output lines are tied back to the backend lines they came from by their text with the client
field and the ``%t`` text set aside and whitespace runs collapsed, plus the instant of ``%t``.
That survives what C mergelogs does to a line (client replaced, time rewritten as localtime
labelled ``+0000``, whitespace collapsed); its uninitialised DST flag moves some lines back an
hour, so an instant one hour off is accepted too and counted as ``shifted``. Identical
lines in the same second are interchangeable, and the first unused one that accepts the
output's client is taken.

A client is right for a line when pen.log holds that client sending the same request, as pen
reduces it, to the same backend within one second of the line's real request. A line whose
connection sent nothing (408, no pen.log entry) is right when it keeps its original client.
"""

from __future__ import annotations

import argparse
import sys
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mergelogs.accesslog import STAMP_LEN, AccessParser, client_span, unescape
from mergelogs.streams import open_input, read_lines
from pen.penlog import parse_line, reduce_request

_HOUR = 3600


@dataclass(frozen=True, slots=True)
class Backend:
    """One backend as truth.tsv's header names it."""

    number: int
    address: str
    path: Path


@dataclass(slots=True)
class Score:
    """The verdict on one merged log."""

    truth_lines: int = 0
    output_lines: int = 0
    lost: int = 0
    extra: int = 0
    """Output lines that are duplicates or were never in any backend log."""
    lost_by_backend: dict[int, int] = field(default_factory=dict)
    scored: int = 0
    """Output lines tied to a backend line whose request is in pen.log."""
    right: int = 0
    exact: int = 0
    """... whose client is the very client that sent it."""
    no_pen: int = 0
    """Output lines tied to a backend line with no pen.log entry (408)."""
    kept: int = 0
    """... that kept their original client field."""
    shifted: int = 0
    """Lines found one hour off their real instant."""
    out_of_order: int = 0
    truth_with_pen: int = 0
    wrong: list[str] = field(default_factory=list)
    """The first few wrongly attributed lines, with the truth, to see why."""

    @property
    def accuracy(self) -> float:
        """Right clients among the scored output lines."""
        return self.right / self.scored if self.scored else 0.0

    @property
    def accuracy_all(self) -> float:
        """Right clients among all backend lines that have a pen.log entry (lost lines wrong)."""
        return self.right / self.truth_with_pen if self.truth_with_pen else 0.0

    def report(self) -> str:
        """A few human-readable lines."""
        lost = ", ".join(f"host{b}: {n}" for b, n in sorted(self.lost_by_backend.items()) if n)
        return "\n".join(
            [
                f"lines: truth {self.truth_lines}, output {self.output_lines}, "
                f"lost {self.lost}{f' ({lost})' if lost else ''}, duplicated/unknown {self.extra}",
                f"accuracy: {self.right}/{self.scored} = {100 * self.accuracy:.3f}% of output lines"
                f" ({100 * self.accuracy_all:.3f}% of all {self.truth_with_pen} lines);"
                f" exact client {self.exact}",
                f"no pen.log entry: {self.kept}/{self.no_pen} kept their client; "
                f"shifted 1 h: {self.shifted}; out of order: {self.out_of_order}",
            ]
        )


def line_key(parser: AccessParser, raw: bytes) -> tuple[int, int | None, bytes, bytes | None]:
    """(key hash, instant, client, request) of a line; the key ignores client and stamp text."""
    line = parser.parse(raw)
    if line.epoch is None:
        return hash(b" ".join(raw.split())), None, b"", None
    stamp = line.stamp_start
    start, end = client_span(raw)
    rest = raw[:start] + raw[end:stamp] + raw[stamp + STAMP_LEN :]
    return hash(b" ".join(rest.split())), line.epoch, raw[start:end], line.request


def read_header(truth: Path) -> list[Backend]:
    """The backends listed in truth.tsv's header, files relative to truth.tsv."""
    backends = []
    with open(truth, encoding="utf-8") as lines:
        for text in lines:
            if not text.startswith("#"):
                break
            parts = text.rstrip("\n").split("\t")
            if parts[0] == "# backend":
                backends.append(Backend(int(parts[1]), parts[2], truth.parent / parts[3]))
    return backends


class PenIndex:
    """Who sent which reduced request to which backend in which second, per pen.log."""

    __slots__ = ("_clients",)

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._clients: dict[int, str | tuple[str, ...]] = {}
        names: dict[str, str] = {}
        for raw in lines:
            record = parse_line(raw)
            if record is None:
                continue
            client = names.setdefault(record.client, record.client)
            key = hash((record.server, record.request, record.epoch))
            known = self._clients.get(key)
            if known is None:
                self._clients[key] = client
            elif isinstance(known, str):
                self._clients[key] = (known, client)
            else:
                self._clients[key] = (*known, client)

    def sent(self, client: str, server: str, request: bytes, epoch: int) -> bool:
        """True if ``client`` sent ``request`` to ``server`` within 1 s of ``epoch``."""
        for second in (epoch - 1, epoch, epoch + 1):
            known = self._clients.get(hash((server, request, second)))
            if known is not None and (known == client or client in known):
                return True
        return False


class Truth:
    """Every backend line: its backend, true client, pen.log epoch, and whether it was seen."""

    def __init__(self, truth: Path) -> None:
        self.backends = read_header(truth)
        self.server = array("H")
        self.pen_epoch = array("q")
        self.client: list[str] = []
        self.original: dict[int, bytes] = {}
        """The client field of each line that has no pen.log entry."""
        self._groups: dict[int, int | list[int]] = {}
        """hash((line key, instant)) -> its rows: one int per line keeps 1M lines in ~150 MB."""
        first: dict[int, int] = {}
        self._rows(truth, first)
        parser = AccessParser()
        for index, backend in enumerate(self.backends):
            source = open_input(str(backend.path))
            try:
                for number, raw in enumerate(read_lines(source)):
                    self._add(parser, first[backend.number] + number, raw, index)
            finally:
                source.close()
        self.used = bytearray(len(self.client))

    def _rows(self, truth: Path, first: dict[int, int]) -> None:
        """Read the rows; each backend's rows come in line order."""
        names: dict[str, str] = {}
        per_backend: dict[int, list[tuple[str, int]]] = {b.number: [] for b in self.backends}
        with open(truth, encoding="utf-8") as lines:
            for text in lines:
                if text.startswith("#"):
                    continue
                number, line, client, epoch, _ = text.rstrip("\n").split("\t")
                rows = per_backend[int(number)]
                if int(line) != len(rows) + 1:
                    raise ValueError(f"{truth}: backend {number} line {line} out of sequence")
                rows.append((names.setdefault(client, client), -1 if epoch == "-" else int(epoch)))
        for index, backend in enumerate(self.backends):
            first[backend.number] = len(self.client)
            for true_client, pen_epoch in per_backend[backend.number]:
                self.client.append(true_client)
                self.pen_epoch.append(pen_epoch)
                self.server.append(index)

    def _add(self, parser: AccessParser, row: int, raw: bytes, server: int) -> None:
        if self.server[row] != server:
            raise ValueError(f"{self.backends[server].path}: more lines than truth.tsv lists")
        key, epoch, client, _ = line_key(parser, raw)
        if self.pen_epoch[row] < 0:
            self.original[row] = client
        slot = hash((key, epoch))
        group = self._groups.get(slot)
        if group is None:
            self._groups[slot] = row
        elif isinstance(group, int):
            self._groups[slot] = [group, row]
        else:
            group.append(row)

    def take(
        self, key: int, epoch: int | None, accepts: Callable[[int], bool]
    ) -> tuple[int, bool] | None:
        """The unused row for ``(key, epoch)`` (an hour off as a fallback), preferring one
        that ``accepts(row)``; and whether it was found an hour off."""
        candidates = [epoch] if epoch is None else [epoch, epoch + _HOUR, epoch - _HOUR]
        for shift, instant in enumerate(candidates):
            group = self._groups.get(hash((key, instant)))
            if group is None:
                continue
            rows = [group] if isinstance(group, int) else group
            free = [row for row in rows if not self.used[row]]
            if not free:
                continue
            chosen = next((row for row in free if accepts(row)), free[0])
            self.used[chosen] = 1
            return chosen, shift > 0
        return None


def score(truth_path: Path, pen_path: Path, merged: Iterable[bytes], examples: int = 0) -> Score:
    """Score the ``merged`` lines of the farm described by ``truth_path`` and ``pen_path``."""
    truth = Truth(truth_path)
    pen_source = open_input(str(pen_path))
    try:
        pen = PenIndex(read_lines(pen_source))
    finally:
        pen_source.close()
    result = Score(truth_lines=len(truth.client))
    result.truth_with_pen = sum(1 for epoch in truth.pen_epoch if epoch >= 0)
    parser = AccessParser()
    previous = None
    for raw in merged:
        result.output_lines += 1
        key, epoch, client_field, request = line_key(parser, raw)
        client = client_field.decode("ascii", "replace")
        reduced = b"" if request is None else reduce_request(unescape(request))

        def accepts(row: int, client: str = client, reduced: bytes = reduced) -> bool:
            epoch = truth.pen_epoch[row]
            server = truth.backends[truth.server[row]].address
            return epoch >= 0 and pen.sent(client, server, reduced, epoch)

        found = truth.take(key, epoch, accepts)
        if found is None:
            result.extra += 1
            continue
        row, shifted = found
        result.shifted += shifted
        if epoch is not None:
            if previous is not None and epoch < previous:
                result.out_of_order += 1
            previous = epoch
        if truth.pen_epoch[row] < 0:
            result.no_pen += 1
            result.kept += client_field == truth.original[row]
            continue
        result.scored += 1
        right = accepts(row)
        result.right += right
        result.exact += client == truth.client[row]
        if not right and len(result.wrong) < examples:
            result.wrong.append(
                f"{truth.backends[truth.server[row]].address} true {truth.client[row]} "
                f"at {truth.pen_epoch[row]}: {raw.decode('ascii', 'replace').rstrip()}"
            )
    for index, backend in enumerate(truth.backends):
        lost = sum(
            1 for row, used in enumerate(truth.used) if not used and truth.server[row] == index
        )
        result.lost_by_backend[backend.number] = lost
        result.lost += lost
    return result


def perfect_merge(truth_path: Path) -> list[bytes]:
    """The merge a perfect tool would write: every line with its true client, in time order.
    A yardstick for the scorer itself; it holds the whole farm in memory."""
    truth = Truth(truth_path)
    parser = AccessParser()
    merged: list[tuple[int, int, bytes]] = []
    row = 0
    for backend in truth.backends:
        source = open_input(str(backend.path))
        try:
            for raw in read_lines(source):
                line = parser.parse(raw)
                client = truth.client[row]
                if truth.pen_epoch[row] >= 0:
                    raw = line.with_client(client.encode())
                merged.append((line.epoch or 0, row, raw))
                row += 1
        finally:
            source.close()
    merged.sort()
    return [raw for _, _, raw in merged]


def score_file(truth_path: Path, pen_path: Path, merged_path: Path, examples: int = 0) -> Score:
    """:func:`score` on a merged file (plain or compressed)."""
    source = open_input(str(merged_path))
    try:
        return score(truth_path, pen_path, read_lines(source), examples)
    finally:
        source.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: print the score of MERGED; exit 1 if lines were lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("truth", type=Path, help="truth.tsv written by genlogs.py")
    parser.add_argument("merged", type=Path, help="the merged log to score")
    parser.add_argument("--pen", type=Path, help="pen.log (default: the one beside truth.tsv)")
    parser.add_argument("--wrong", type=int, default=0, metavar="N",
                        help="also print the first N wrongly attributed lines")  # fmt: skip
    args = parser.parse_args(argv)
    pen_path = args.pen or args.truth.parent / "pen.log"
    result = score_file(args.truth, pen_path, args.merged, args.wrong)
    print(result.report())
    for example in result.wrong:
        print("wrong:", example)
    return 1 if result.lost or result.extra else 0


if __name__ == "__main__":
    sys.exit(main())
