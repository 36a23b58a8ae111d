"""Whole-program runs in a subprocess: against a real dnsmasq, and with the DNS silent."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from webresolve.testing import free_port

from .conftest import log_line

BIN = Path(sys.executable).parent
DNSMASQ = "/usr/sbin/dnsmasq"


def wait_until_answering(port: int, proc: subprocess.Popen[bytes]) -> None:
    query = dns.message.make_query("1.0.0.127.in-addr.arpa.", "PTR")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            dns.query.udp(query, "127.0.0.1", timeout=0.2, port=port)
            return
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"dnsmasq did not start answering: {err!r}")


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    names = {f"198.51.100.{i}": f"host{i}.farm.example" for i in range(1, 200)}
    names |= {f"2001:db8::{i:x}": f"six{i}.farm.example" for i in range(1, 50)}
    hosts = tmp_path / "addn-hosts"
    hosts.write_text("".join(f"{a} {n}\n" for a, n in names.items()))
    port = free_port()
    proc = subprocess.Popen(
        [DNSMASQ, "--no-daemon", "-C", "/dev/null", "--port", str(port),
         "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
         "--addn-hosts", str(hosts), "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
         "--local-ttl=3600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until_answering(port, proc)
        yield port, names
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def test_splitwr_against_dnsmasq(dnsmasq: tuple[int, dict[str, str]], tmp_path: Path) -> None:
    port, names = dnsmasq
    clients = [*names, "203.0.113.7", "::ffff:198.51.100.5", "www.example.com", "-"]
    lines = [log_line(clients[(n * 5) % len(clients)], f"/{n}") for n in range(3000)]
    log = tmp_path / "access_log"
    log.write_bytes(b"".join(lines))
    out = tmp_path / "access_log.resolved"
    stats = tmp_path / "stats"
    result = subprocess.run(
        [BIN / "splitwr", "--nameserver", f"127.0.0.1:{port}", "--verify", "-o", str(out),
         "-s", str(stats), "--strict", str(log)],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mapped = names | {"::ffff:198.51.100.5": names["198.51.100.5"]}
    expected = []
    for line in lines:
        client = line.split(b" ", 1)[0].decode()
        name = mapped.get(client)
        expected.append(line if name is None else name.encode() + line[len(client) :])
    assert out.read_bytes() == b"".join(expected)
    text = stats.read_text()
    assert text.startswith("logresolve Statistics:\nEntries: 3000\n    With name   : 24")
    assert "    resolved           : 248\n" in text and "    NXDOMAIN           : 1\n" in text


def test_silent_dns_every_line_written_no_traceback(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        lines = b"".join(log_line(f"192.0.2.{i % 50}") for i in range(2000))
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "webresolve", "--nameserver", f"127.0.0.1:{port}",
             "--timeout", "0.2", "--lifetime", "0.5", "--summary", "--strict"],
            input=lines, capture_output=True, timeout=30,
        )  # fmt: skip
        elapsed = time.monotonic() - began
    assert result.stdout == lines
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr and b"timeouts" in result.stderr
    assert elapsed < 10


def test_missing_file_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webresolve", "--nameserver", "127.0.0.1", str(tmp_path / "nope")],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.count(b"\n") == 1 and b"No such file or directory" in result.stderr


def test_webresolve_imports_neither_the_balancer_nor_dnspythons_resolver() -> None:
    """webresolve needs only the field splitting (never pen), and a run given --nameserver
    needs dnspython's message layer but never its resolver (only read for resolv.conf)."""
    code = (
        "import sys, webresolve.cli, webresolve.app; "
        "print(sorted(m for m in sys.modules if m == 'pen' or m.startswith('pen.')"
        " or 'resolver' in m or m.startswith('dns.query') or m.startswith('dns.async')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert result.stdout == b"[]\n", result.stderr


def test_reader_closing_early_exits_141_quietly_with_the_summary(tmp_path: Path) -> None:
    """``webresolve log | head -1``: the reader chose to stop; exit as grep does, no error."""
    log = tmp_path / "access_log"
    log.write_bytes(b"".join(log_line(f"192.0.2.{i % 200}", f"/{i}") for i in range(50_000)))
    hosts = tmp_path / "hosts"
    hosts.write_text("".join(f"192.0.2.{i} h{i}.example\n" for i in range(200)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "webresolve", "--summary", "--hosts", str(hosts), str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    head = subprocess.run(["head", "-1"], stdin=proc.stdout, capture_output=True, timeout=60)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 141
    assert head.stdout.startswith(b"h0.example ") and head.stdout.count(b"\n") == 1
    assert b"webresolve" in err and b"lines" in err
    assert b"Error" not in err and b"Traceback" not in err and b"Broken pipe" not in err
