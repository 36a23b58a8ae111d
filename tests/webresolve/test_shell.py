"""webresolve as a shell filter: -o onto links and FIFOs, signals mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.signalled import signal_when

from .conftest import log_line

LINES = [log_line(f"192.0.2.{i}") for i in range(1, 20)]
RESOLVED = b"".join(log_line(f"h{i}.example") for i in range(1, 20))


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text("".join(f"192.0.2.{i} h{i}.example\n" for i in range(1, 20)))
    return path


def webresolve(hosts: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "webresolve", "--hosts", str(hosts), *args]


def hidden(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_output_onto_a_fifo_is_written_into(hosts: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = subprocess.run(webresolve(hosts, "-o", str(fifo)), input=b"".join(LINES),
                            capture_output=True, timeout=60)
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert got == [RESOLVED]
    assert fifo.is_fifo() and hidden(tmp_path) == []


def test_output_onto_a_symlink_replaces_its_target(hosts: Path, tmp_path: Path) -> None:
    target = tmp_path / "resolved.1"
    target.write_bytes(b"old\n")
    link = tmp_path / "resolved"
    link.symlink_to(target.name)
    result = subprocess.run(webresolve(hosts, "-o", str(link)), input=b"".join(LINES),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and target.read_bytes() == RESOLVED
    assert hidden(tmp_path) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_run_leaves_no_temporary_file(
    hosts: Path, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(webresolve(hosts, "-o", str(out)), stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(LINES[:5]))
    proc.stdin.flush()
    status = signal_when(proc, lambda: hidden(tmp_path), "the temporary output file", signum)
    assert status == (code, b"")
    assert hidden(tmp_path) == [] and not out.exists()


def test_a_line_too_long_to_hold_passes_through_untouched(hosts: Path, tmp_path: Path) -> None:
    """In pieces (each but the last without a newline), none of them rewritten."""
    huge = b"192.0.2.1 " + b"192.0.2.2 - - " * (3 << 20) + b"\n"
    log = tmp_path / "access_log"
    log.write_bytes(LINES[0] + huge + LINES[1])
    result = subprocess.run(webresolve(hosts, str(log)), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == log_line("h1.example") + huge + log_line("h2.example")
