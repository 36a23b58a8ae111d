"""Inputs that can be read only once (FIFOs, a shell's ``<(zcat -f a.1 a)``) with workers on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mergelogs.accesslog import format_stamp

LINES = 3000


def _feed(fifo: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fifo, "wb") as out:
            out.write(data)
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(120)
def test_fifo_inputs_lose_no_line_with_two_jobs(tmp_path):
    epoch = 1_790_000_000
    pen, logs = [], {"10.0.0.1": [], "10.0.0.2": []}
    for n in range(LINES):
        server = "10.0.0.1" if n % 2 else "10.0.0.2"
        second = epoch + n // 50
        pen.append(b"192.0.2.%d %d %s GET /p%d HTTP/1.1\n" % (n % 200, second, server.encode(), n))
        logs[server].append(b'%s - - [%s] "GET /p%d HTTP/1.1" 200 5 "-" "t"\n'
                            % (server.encode(), format_stamp(second), n))
    fifos = {}
    threads = []
    for name, data in [("pen.log", b"".join(pen)),
                       *((f"access_log.{s}", b"".join(lines)) for s, lines in logs.items())]:
        fifos[name] = tmp_path / name
        os.mkfifo(fifos[name])
        threads.append(_feed(fifos[name], data))
    done = subprocess.run(
        [sys.executable, "-m", "mergelogs", "--jobs", "2", "-p", str(fifos["pen.log"]),
         *(f"{s}:{fifos[f'access_log.{s}']}" for s in logs)],
        capture_output=True, timeout=90)
    for thread in threads:
        thread.join(5)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.splitlines()
    assert len(out) == LINES
    assert sorted(line.split(b" ", 1)[0] for line in out) == sorted(
        line.split(b" ", 1)[0] for line in pen)
