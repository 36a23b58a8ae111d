"""Signal a running command at the right moment, for the shell-behaviour tests of each tool."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_for(ready: Callable[[], object], what: str, limit: float = 30.0) -> None:
    """Poll ``ready`` until it is true, for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def signal_when(proc: subprocess.Popen[bytes], ready: Callable[[], object], what: str,
                signum: int) -> tuple[int, bytes]:
    """Send ``signum`` once ``ready()``; the exit code and stderr. The process is always
    stopped (by its pid) and its pipes closed."""
    assert proc.stderr is not None
    try:
        wait_for(ready, what)
        proc.send_signal(signum)
        return proc.wait(timeout=30), proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stderr):
            if stream is not None:
                stream.close()
