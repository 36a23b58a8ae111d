"""The held-lines FIFO: order, the memory budget, the spill file and its cleanup."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webresolve.backlog import Backlog

Entry = tuple[bytes, int, str]


def revive(line: bytes) -> Entry:
    return line, len(line), "revived"


@pytest.fixture
def tmpdir_here(tmp_path: Path) -> Iterator[Path]:
    """$TMPDIR pointed at ``tmp_path`` for the test."""
    tempfile.tempdir = str(tmp_path)
    try:
        yield tmp_path
    finally:
        tempfile.tempdir = None


def drain(backlog: Backlog[Entry]) -> list[Entry]:
    out = []
    while (entry := backlog.head()) is not None:
        out.append(entry)
        backlog.pop()
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.binary(max_size=300), st.none()), max_size=200),
    st.integers(0, 2000),
)
def test_order_within_the_budget(ops: list[bytes | None], budget: int) -> None:
    """Pushes (bytes) and pops (None) in any order come out first in, first out, with
    at most the budget (or one entry) in memory."""
    backlog: Backlog[Entry] = Backlog(budget, revive)
    pushed: list[bytes] = []
    popped: list[bytes] = []
    for op in ops:
        if op is None:
            entry = backlog.head()
            if entry is not None:
                popped.append(entry[0])
                backlog.pop()
        else:
            backlog.push((op, len(op), "fresh"))
            pushed.append(op)
        assert backlog.held <= max(budget, 200 + max(map(len, pushed), default=0))
    popped += [entry[0] for entry in drain(backlog)]
    backlog.close()
    assert popped == pushed and backlog.held == 0


def test_spilled_lines_are_revived_and_the_file_is_freed(tmpdir_here: Path) -> None:
    backlog: Backlog[Entry] = Backlog(1000, revive)
    lines = [b"%d\n" % n * (n % 7) for n in range(5000)] + [b"x" * (3 << 20)]
    for line in lines:
        backlog.push((line, len(line), "fresh"))
    assert backlog.held <= 1000 and backlog.spilled > 4900
    assert list(tmpdir_here.iterdir()) == []  # deleted as created
    out = drain(backlog)
    assert [e[0] for e in out] == lines
    assert {e[2] for e in out[-backlog.spilled :]} == {"revived"}
    assert backlog._file is not None and backlog._file.seek(0, 2) == 0  # truncated
    backlog.push((b"again\n", 6, "fresh"))
    assert backlog.head() == (b"again\n", 6, "fresh")
    backlog.close()
