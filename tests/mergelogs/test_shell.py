"""mergelogs as a shell filter: -o onto links and FIFOs, signals, a reader that goes away."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bench import genlogs

from mergelogs.streams import output_target
from tests.mergelogs.conftest import BASE, clf, pen
from tests.signalled import signal_when

MERGELOGS = [sys.executable, "-m", "mergelogs"]
LINES = [clf("10.0.0.100", BASE + i, b"GET /%d HTTP/1.1" % i) for i in range(50)]
PEN = [pen("192.0.2.7", BASE + i, "10.0.0.1", b"GET /%d HTTP/1.1" % i) for i in range(50)]
MERGED = b"".join(line.replace(b"10.0.0.100", b"192.0.2.7") for line in LINES)


@pytest.fixture
def small(write):
    return write("pen.log", PEN), write("a.log", LINES)


def merge(*args: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MERGELOGS, *args], capture_output=True, timeout=60, **kwargs)


def hidden(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_output_onto_a_fifo_is_written_into(small, tmp_path):
    penlog, a = small
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = merge("-p", penlog, "-o", str(fifo), f"10.0.0.1:{a}")
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert got == [MERGED]
    assert fifo.is_fifo() and hidden(tmp_path) == []


def test_output_onto_a_symlink_replaces_its_target(small, tmp_path):
    penlog, a = small
    (tmp_path / "logs").mkdir()
    target = tmp_path / "logs" / "access_log"
    target.write_bytes(b"yesterday\n")
    link = tmp_path / "current"
    link.symlink_to("logs/access_log")
    result = merge("-p", penlog, "-o", str(link), f"10.0.0.1:{a}")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "logs/access_log"
    assert target.read_bytes() == MERGED
    assert hidden(tmp_path) == [] and hidden(tmp_path / "logs") == []


def test_output_onto_a_dangling_symlink_creates_its_target(small, tmp_path):
    penlog, a = small
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "new.log")
    assert merge("-p", penlog, "-o", str(link), f"10.0.0.1:{a}").returncode == 0
    assert link.is_symlink() and (tmp_path / "new.log").read_bytes() == MERGED


def test_output_targets(tmp_path):
    """Only a regular file (or a new name) is replaced; open files and devices are written
    into. Looked at, never written: this suite may run as root."""
    regular = tmp_path / "regular"
    regular.write_bytes(b"")
    assert output_target(str(regular)) == (str(regular), False)
    assert output_target(str(tmp_path / "new")) == (str(tmp_path / "new"), False)
    assert output_target("/dev/stdout") == ("/proc/self/fd/1", True)
    assert output_target("/dev/fd/1")[1] is True
    assert output_target("/dev/zero") == ("/dev/zero", True)


def test_stdout_named_as_a_file_is_written_into(small):
    penlog, a = small
    result = merge("-p", penlog, "-o", "/dev/stdout", f"10.0.0.1:{a}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == MERGED


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as text:
        return [int(child) for child in text.read().split()]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_run_leaves_no_temporary_file(small, tmp_path, signum, code):
    """The backend log is a pipe kept open: the merge is running when the signal comes."""
    penlog, _ = small
    out = tmp_path / "out.log"
    proc = subprocess.Popen([*MERGELOGS, "-p", penlog, "-o", str(out), "10.0.0.1:-"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(LINES[:10]))
    proc.stdin.flush()
    status = signal_when(proc, lambda: hidden(tmp_path), "the temporary output file", signum)
    assert status == (code, b"")
    assert hidden(tmp_path) == [] and not out.exists()


GAP = """
import contextlib, sys, time
from mergelogs import cli
kept = []
push = contextlib.ExitStack._push_cm_exit
def slow(self, manager, exit):
    if getattr(getattr(manager, "gen", None), "__name__", "") == "atomic_output":
        kept.append(manager)  # as a reference cycle would: collected only at shutdown
        time.sleep(3)
    return push(self, manager, exit)
contextlib.ExitStack._push_cm_exit = slow
sys.argv[0] = "mergelogs"
cli.main()
"""


def test_signal_between_making_the_output_and_recording_its_cleanup(small, tmp_path):
    """The flake once seen under load, made certain: the gap between the output's
    ``__enter__`` (the temporary file made) and the stack's record of its ``__exit__`` is
    widened, and SIGTERM comes inside it. The signal must wait until the cleanup is recorded;
    raised in the gap, the file was left to a finalizer at shutdown, which failed silently."""
    penlog, _ = small
    out = tmp_path / "out.log"
    proc = subprocess.Popen([sys.executable, "-c", GAP, "-p", penlog, "-o", str(out),
                             "10.0.0.1:-"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(LINES[:10]))
    proc.stdin.flush()
    status = signal_when(proc, lambda: hidden(tmp_path), "the temporary output file",
                         signal.SIGTERM)
    assert status == (143, b"")
    assert hidden(tmp_path) == [] and not out.exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_worker_processes_too(farm, tmp_path, signum, code):
    """--jobs 2 over regular files (FIFO inputs keep one process): the output is a FIFO
    nobody reads, so the merge blocks mid-run with its -r file still a temporary one."""
    out = tmp_path / "out.fifo"
    os.mkfifo(out)
    reader = os.open(out, os.O_RDONLY | os.O_NONBLOCK)  # held open, never read
    rejects = tmp_path / "rejects"
    try:
        proc = subprocess.Popen(
            [*MERGELOGS, "--jobs", "2", "-p", str(farm / "pen.log"), "-o", str(out),
             "-r", str(rejects), f"10.0.0.1:{farm / 'access_log.host1'}",
             f"10.0.0.2:{farm / 'access_log.host2'}"], stderr=subprocess.PIPE)
        workers: list[int] = []

        def ready() -> bool:
            workers[:] = _children(proc.pid)
            return bool(hidden(tmp_path)) and len(workers) == 2

        status, err = signal_when(proc, ready, "the temporary file and two workers", signum)
    finally:
        os.close(reader)
    # the farm mixes common and combined logs: that warning is the only word on stderr
    assert status == code and err.count(b"\n") == 1 and b"mix log formats" in err
    assert hidden(tmp_path) == [] and not rejects.exists()
    assert [w for w in workers if os.path.exists(f"/proc/{w}")] == []


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    out = tmp_path_factory.mktemp("farm")
    genlogs.write_farm(genlogs.Farm(backends=2, rate=200.0, requests=20_000, seed=3), out)
    return out


def _summary(err: str) -> tuple[dict[str, list[int]], list[int]]:
    """The summary's rows (backend: lines, matched, unmatched) and pen.log's entries, unused."""
    rows = {}
    for line in err.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0].startswith("10.0.0."):
            rows[cells[0]] = [int(cell.replace(",", "")) for cell in cells[2:5]]
    found = re.search(r"pen\.log: ([\d,]+) entries, (-?[\d,]+) unused", err)
    assert found is not None, err
    return rows, [int(figure.replace(",", "")) for figure in found.groups()]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_reader_closing_early_exits_141_quietly_with_the_summary(farm, jobs):
    """``mergelogs ... | head -n 5000`` through a real pipe (20,000 lines: the pipe breaks).
    The summary has the figures of what was merged when the reader went away: at least the
    lines written, matched or not, and no more than the whole farm."""
    proc = subprocess.Popen(
        [*MERGELOGS, "--jobs", jobs, "--summary", "-p", str(farm / "pen.log"),
         f"10.0.0.1:{farm / 'access_log.host1'}", f"10.0.0.2:{farm / 'access_log.host2'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-n", "5000"], stdin=proc.stdout, capture_output=True,
                          timeout=60)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert head.stdout.count(b"\n") == 5000
    assert "mergelogs summary" in err
    assert "Error" not in err and "Broken pipe" not in err and "Traceback" not in err
    rows, (entries, unused) = _summary(err)
    assert sorted(rows) == ["10.0.0.1", "10.0.0.2"]
    lines = sum(row[0] for row in rows.values())
    placed = sum(row[1] + row[2] for row in rows.values())
    matched = sum(row[1] for row in rows.values())
    assert 5000 <= placed <= lines <= 20_000
    assert all(row[1] + row[2] <= row[0] for row in rows.values())
    assert matched > 0 and 0 <= unused <= entries - matched
