"""A line too long to hold: read in pieces, passed through byte for byte, never held whole."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc

import pytest

from mergelogs.streams import Input, read_lines
from tests.mergelogs.conftest import BASE, clf, pen

HUGE = 64 << 20


def lines_of(data: bytes, limit: int) -> list[bytes]:
    stream = io.BytesIO(data)
    return list(read_lines(Input("mem", stream, stream, len(data)), limit))  # type: ignore[arg-type]


@pytest.mark.parametrize("tail", [b"", b"\n", b"\nlast\n", b"\nno newline"])
def test_long_line_comes_in_pieces_and_nothing_is_lost(tail):
    data = b"first\n" + b"x" * (8 << 20) + tail
    got = lines_of(data, 1 << 20)
    assert b"".join(got) == data + (b"" if data.endswith(b"\n") else b"\n")
    assert got[0] == b"first\n"
    assert all(len(piece) <= (2 << 20) + 1 for piece in got)
    assert sum(not piece.endswith(b"\n") for piece in got) >= 3


def test_reading_a_long_line_holds_only_pieces():
    data = b"y" * (32 << 20)
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        total = sum(len(p) for p in read_lines(Input("mem", stream, stream, None), 1 << 20))  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(data) + 1
    assert peak < 12 << 20  # a few pieces of about 1 MiB, whatever the line (main: 64 MiB)


def peak_rss(args: list[str]) -> int:
    """Largest resident size in KiB of the command and its workers."""
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                            timeout=120, check=True)
    status, kib = result.stdout.split()
    assert status == b"0", result.stderr
    return int(kib)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_merge_passes_a_huge_line_through_without_holding_it(write, tmp_path, jobs):
    before = [clf("10.0.0.100", BASE + i, b"GET /%d HTTP/1.1" % i) for i in range(5)]
    after = [clf("10.0.0.100", BASE + 5 + i, b"GET /%d HTTP/1.1" % i) for i in range(5)]
    penlog = write("pen.log", [pen("192.0.2.9", BASE + i, "10.0.0.1", b"GET /%d HTTP/1.1" % i)
                               for i in range(5)])
    other = write("b.log", [clf("10.0.0.100", BASE + 3, b"GET /b HTTP/1.1")])
    huge = b"10.0.0.100 - - [" + before[0].split(b"[")[1].split(b"]")[0] + b'] "GET /' \
        + b"z" * HUGE + b'" 200 1\n'
    small = write("small.log", before + after)
    big = write("big.log", [*before, huge, *after])
    out = tmp_path / "out"
    common = [sys.executable, "-m", "mergelogs", "--jobs", jobs, "-p", penlog, "-o", str(out)]
    base = peak_rss([*common, f"10.0.0.1:{small}", f"10.0.0.2:{other}"])
    without = out.read_bytes()
    rejects = tmp_path / "rejects"
    peak = peak_rss([*common, "-r", str(rejects), f"10.0.0.1:{big}", f"10.0.0.2:{other}"])
    merged = out.read_bytes()
    assert merged.count(huge) == 1 and merged.replace(huge, b"") == without
    assert merged.index(huge) > merged.index(b"192.0.2.9 - - ")  # in its place, not moved
    assert b"big.log:6: longer than a line can be held: 10.0.0.100" in rejects.read_bytes()
    assert peak - base < 24 << 10, (base, peak)  # KiB: held twice on main, +128 MiB
