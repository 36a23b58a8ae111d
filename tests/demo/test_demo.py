"""``make demo`` at a trimmed size: its outputs checked against what the clients sent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ROOT / "sample_logs" / "demo.hosts"
_LINE = re.compile(rb'^(\S+) - - \[[^]]+\] "(\S+) (\S+) HTTP/1\.1" \d{3} ')


def _demo(out: Path, requests: int) -> list[str]:
    return [sys.executable, "-m", "demo", "--requests", str(requests), "--out", str(out)]


def _requests(path: Path) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for line in path.read_bytes().splitlines():
        match = _LINE.match(line)
        assert match, line
        found[tuple(part.decode() for part in match.groups())] += 1
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def _stop_leftovers(out: Path) -> None:
    """Should the demo fail to stop its processes, the test stops them, by their pid files."""
    for pid_file in out.glob("*.pid"):
        text = pid_file.read_text().strip()
        if text.isdigit() and _alive(int(text)):
            os.kill(int(text), signal.SIGKILL)


@pytest.mark.timeout(180)
def test_every_request_comes_back_once_with_its_client_and_name(tmp_path):
    out = tmp_path / "demo"
    try:
        done = subprocess.run(_demo(out, 600), cwd=ROOT, capture_output=True, timeout=150)
    finally:
        _stop_leftovers(out)
    assert done.returncode == 0, done.stderr.decode()
    sent = Counter()
    for row in (out / "sent.tsv").read_text().splitlines():
        client, method, path, _status = row.split("\t")
        sent[client, method, path] += 1
    assert sum(sent.values()) == 600 and set(sent.values()) == {1}
    assert len({client for client, _, _ in sent}) == 8
    assert _requests(out / "access_log") == sent

    names = dict(line.split() for line in HOSTS.read_text().splitlines()
                 if line and not line.startswith("#"))
    resolved = _requests(out / "access_log.resolved")
    assert resolved == Counter({(names[c], m, p): n for (c, m, p), n in sent.items()})
    assert {client for client, _, _ in resolved} == set(names.values())

    for log in ("pen.log", "access_log.web1", "access_log.web2", "access_log.web3"):
        assert (out / log).stat().st_size > 0, f"{log}: nothing after the HUP"
        assert (out / f"{log}.1").stat().st_size > 0, f"{log}.1: nothing before the rotation"
    assert not list(out.glob("*.pid")), "a process did not stop cleanly"
    assert b"goaccess" in done.stdout and b"--no-ip-validation" in done.stdout


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_process_by_pid(tmp_path):
    out = tmp_path / "demo"
    demo = subprocess.Popen(_demo(out, 500_000), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        pid_files = [out / name for name in ("web1.pid", "web2.pid", "web3.pid", "pen.pid")]
        deadline = time.monotonic() + 60
        while not all(p.exists() and p.read_text().strip() for p in pid_files):
            assert demo.poll() is None, demo.stderr.read().decode()
            assert time.monotonic() < deadline, "the demo's processes did not start"
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in pid_files]
        time.sleep(0.3)  # requests in flight
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stderr.close()
        _stop_leftovers(out)
    assert not [pid for pid in pids if _alive(pid)]
