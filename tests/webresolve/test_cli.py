"""The command line through click's CliRunner: every option and every error path."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from webresolve.cli import main, parse_nameserver, splitwr, system_nameservers
from webresolve.errors import SpecError
from webresolve.testing import Behaviour, FakeDns
from webresolve.transport import Nameserver

from .conftest import log_line

Server = tuple[FakeDns, int]
LINES = [log_line("192.0.2.1"), log_line("2001:db8::1"), log_line("192.0.2.2"), log_line("-")]
RESOLVED = [
    log_line("one.example"),
    log_line("six.example"),
    log_line("192.0.2.2"),
    log_line("-"),
]


@pytest.fixture
def server(dns_thread: Server) -> Server:
    fake, port = dns_thread
    fake.add("192.0.2.1", "one.example")
    fake.add("2001:db8::1", "six.example")
    return fake, port


def invoke(port: int, *args: str, stdin: bytes = b"".join(LINES), command=main):
    runner = CliRunner()
    ns = ["--nameserver", f"127.0.0.1:{port}", "--timeout", "0.2", "--lifetime", "0.5"]
    return runner.invoke(command, [*ns, *args], input=stdin)


def test_stdin_to_stdout(server: Server) -> None:
    result = invoke(server[1])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"".join(RESOLVED)
    assert result.stderr == ""


def test_files_compressed_and_output_atomic(server: Server, tmp_path: Path) -> None:
    paths = []
    for i, opener in enumerate((gzip.open, bz2.open, lzma.open, open)):
        path = tmp_path / f"access_log.{i}"
        with opener(path, "wb") as out:
            out.write(LINES[i])
        paths.append(str(path))
    target = tmp_path / "resolved"
    result = invoke(server[1], "-o", str(target), *paths, command=splitwr)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b""
    assert target.read_bytes() == b"".join(RESOLVED)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_splitwr_needs_a_file(server: Server) -> None:
    result = invoke(server[1], command=splitwr)
    assert result.exit_code == 2 and "Missing argument" in result.output


def test_field_two(server: Server) -> None:
    line = b'www.example.com:443 192.0.2.1 - - [10/Oct/2023:13:55:36 -0400] "GET /" 200 1\n'
    result = invoke(server[1], "--field", "2", stdin=line)
    assert result.stdout_bytes == line.replace(b"192.0.2.1", b"one.example")


def test_hosts_file_first(server: Server, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.2 from-hosts.example\n")
    result = invoke(server[1], "--hosts", str(hosts), "--summary")
    assert result.stdout_bytes.splitlines()[2].startswith(b"from-hosts.example ")
    assert "hosts file hits" in result.stderr


def test_verify_and_strict(server: Server) -> None:
    fake, port = server
    fake.add("192.0.2.3", "liar.example", forward=False)
    fake.add("192.0.2.4", None, Behaviour.DROP)
    lines = log_line("192.0.2.1") + log_line("192.0.2.3")
    result = invoke(port, "--verify", "--strict", stdin=lines)
    assert result.exit_code == 0
    assert result.stdout_bytes == log_line("one.example") + log_line("192.0.2.3")
    result = invoke(port, "--strict", stdin=lines + log_line("192.0.2.4"))
    assert result.exit_code == 1
    assert result.stdout_bytes.endswith(log_line("192.0.2.4"))
    assert invoke(port, stdin=log_line("192.0.2.4")).exit_code == 0


def test_cache_second_run_sends_nothing(server: Server, tmp_path: Path) -> None:
    fake, port = server
    cache = str(tmp_path / "cache.db")
    stats = tmp_path / "stats.txt"
    first = invoke(port, "--cache", cache)
    asked = sum(fake.queries.values())
    second = invoke(port, "--cache", cache, "-s", str(stats), "--min-ttl", "0", "--max-ttl", "60")
    assert first.stdout_bytes == second.stdout_bytes == b"".join(RESOLVED)
    assert sum(fake.queries.values()) == asked == 3
    text = stats.read_text()
    assert text.startswith("logresolve Statistics:\nEntries: 4\n")
    assert "    cache hits         : 3\n" in text and "    queries sent       : 0\n" in text


def test_other_options_accepted(server: Server) -> None:
    result = invoke(
        server[1],
        "-n",
        "1",
        "--retries",
        "0",
        "--rate",
        "1000",
        "--window",
        "1",
        "--negative-ttl",
        "5",
        "-v",
    )
    assert result.exit_code == 0 and result.stdout_bytes == b"".join(RESOLVED)
    assert "resolving" in result.stderr and "4 lines" in result.stderr


def test_dns_down_every_line_written() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(port, "--summary")
    assert result.exit_code == 0
    assert result.stdout_bytes == b"".join(LINES)
    assert "SERVFAIL" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nameserver", "example.com"], "not an IP address"),
        (["--nameserver", "127.0.0.1:0"], "port must be 1-65535"),
        (["--nameserver", "[::1]"], "expected [IPv6]:PORT"),
        (["--timeout", "0"], "--timeout"),
        (["--field", "0"], "--field"),
        (["-n", "0"], "--concurrency"),
        (["--min-ttl", "100", "--max-ttl", "10"], "--min-ttl is larger than --max-ttl"),
        (["--bogus-option"], "No such option"),
        (["/nonexistent/access_log"], "/nonexistent/access_log: No such file or directory"),
        (["-o", "/nonexistent/dir/out"], "No such file or directory"),
        (["--hosts", "/nonexistent/hosts"], "/nonexistent/hosts"),
        (["-s", "/nonexistent/dir/stats"], "/nonexistent/dir/stats"),
    ],
)
def test_usage_and_io_errors_exit_2(server: Server, args: list[str], message: str) -> None:
    result = invoke(server[1], *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_hosts_and_cache_files(server: Server, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# x\nnot-an-address name\n")
    result = invoke(server[1], "--hosts", str(hosts))
    assert result.exit_code == 2 and f"{hosts}:2: not an IP address" in result.output
    junk = tmp_path / "cache.db"
    junk.write_bytes(b"not a database" * 200)
    result = invoke(server[1], "--cache", str(junk))
    assert result.exit_code == 2 and "cache" in result.output


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_input_exits_2_and_keeps_no_output(
    server: Server, tmp_path: Path, compress, damage: str
) -> None:
    data = bytearray(compress(b"".join(log_line(f"192.0.2.{i % 250}") for i in range(3000))))
    if damage == "flip":
        data[len(data) // 2 : len(data) // 2 + 4] = b"\xff\x00\xff\x00"
    else:
        del data[-len(data) // 3 :]
    bad = tmp_path / "access_log.1"
    bad.write_bytes(bytes(data))
    target = tmp_path / "out"
    result = invoke(server[1], "-o", str(target), str(bad))
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not target.exists()


def test_version_and_help() -> None:
    runner = CliRunner()
    assert "0.1.0" in runner.invoke(main, ["--version"]).output
    help_text = runner.invoke(splitwr, ["--help"]).output
    for option in ("--concurrency", "--nameserver", "--cache", "--verify", "--strict", "-s,"):
        assert option in help_text


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("192.0.2.53", Nameserver("192.0.2.53", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("::1", Nameserver("::1", 53)),
        ("[::1]:5353", Nameserver("::1", 5353)),
    ],
)
def test_parse_nameserver(text: str, server: Nameserver) -> None:
    assert parse_nameserver(text) == server


def test_parse_nameserver_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad nameserver"):
        parse_nameserver("1.2.3.4:x")
    assert issubclass(SpecError, ValueError)


def test_system_nameservers_reads_resolv_conf() -> None:
    servers = system_nameservers()
    assert all(isinstance(s, Nameserver) and s.port == 53 for s in servers)


def test_hosts_alone_needs_no_network(tmp_path: Path) -> None:
    """No --nameserver: resolv.conf's servers would be used, but every address is in
    --hosts, so nothing is sent and the run works offline (the demo's case)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 one.example\n2001:db8::1 six.example\n192.0.2.2 two.example\n")
    result = CliRunner().invoke(main, ["--hosts", str(hosts), "--summary"], input=b"".join(LINES))
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"".join(RESOLVED).replace(b"192.0.2.2", b"two.example")
    assert re.search(r"queries sent\s*│\s*0 │", result.stderr)
    assert re.search(r"hosts file hits\s*│\s*3 │", result.stderr)


def test_poisoned_cache_row_is_not_written(server: Server, tmp_path: Path) -> None:
    """A row holding a newline and a terminal escape must not turn 2 lines into 3."""
    cache = str(tmp_path / "cache.db")
    invoke(server[1], "--cache", cache)
    with sqlite3.connect(cache) as db:
        db.execute(
            "UPDATE answers SET name = ? WHERE address = '192.0.2.1'", ("evil host\n\x1b[31m",)
        )
        db.execute("UPDATE answers SET name = '127.1' WHERE address = '2001:db8::1'")
    db.close()
    result = invoke(server[1], "--cache", cache, "--summary", stdin=b"".join(LINES[:2]))
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"".join(LINES[:2])
    assert re.search(r"bogus names\s*│\s*2 │", result.stderr)


def test_ip_like_hosts_names_are_bogus(server: Server, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 2130706433\n2001:db8::1 0x7f.1\n192.0.2.2 fine.example\n")
    result = invoke(server[1], "--hosts", str(hosts), "--summary")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.splitlines(keepends=True) == [
        *LINES[:2],
        log_line("fine.example"),
        LINES[3],
    ]
    assert re.search(r"bogus names\s*│\s*2 │", result.stderr)


@pytest.mark.timeout(60)
def test_locked_cache_goes_on_without_it(server: Server, tmp_path: Path) -> None:
    """Another process holds the cache exclusively: after a short wait the run goes on
    without it, one warning line, every line written, exit status 0."""
    cache = str(tmp_path / "cache.db")
    invoke(server[1], "--cache", cache, stdin=b"")
    holder = sqlite3.connect(cache, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        ns = ["--nameserver", f"127.0.0.1:{server[1]}", "--timeout", "0.2", "--lifetime", "0.5"]
        done = subprocess.run(
            [sys.executable, "-m", "webresolve", *ns, "--cache", cache],
            input=b"".join(LINES),
            capture_output=True,
            timeout=25,
        )
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"".join(RESOLVED)
    warning = done.stderr.decode().splitlines()
    assert len(warning) == 1 and "locked" in warning[0] and "without it" in warning[0]


def test_buffer_and_window_options(server: Server) -> None:
    """No memory for held lines and one address at a time: still every line, in order."""
    result = invoke(server[1], "--buffer", "0", "--window", "1", "--summary")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"".join(RESOLVED)
    assert "lines held on disk" in result.stderr


def open_files(pid: int) -> list[str]:
    """What the process's descriptors point at (those closed while looking are skipped)."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            targets.append(os.readlink(fd))
    return targets


@pytest.mark.timeout(60)
def test_spill_file_is_in_tmpdir_and_never_named(dns_thread: Server, tmp_path: Path) -> None:
    """Behind a black hole, held lines go to a file in $TMPDIR that has no name from the
    start: the running process holds it open, the directory stays empty, and nothing is
    left after the process is killed."""
    fake, port = dns_thread
    fake.add("198.51.100.1", None, Behaviour.DROP)
    spool = tmp_path / "spool"
    spool.mkdir()
    log = tmp_path / "access_log"
    log.write_bytes(
        log_line("198.51.100.1") + b"".join(log_line("-", f"/{n}") for n in range(50_000))
    )
    ns = ["--nameserver", f"127.0.0.1:{port}", "--timeout", "20", "--lifetime", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "webresolve", *ns, "--buffer", "0", str(log)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(spool)},
    )
    try:
        held: list[str] = []
        for _ in range(400):
            held = [t for t in open_files(proc.pid) if t.startswith(str(spool))]
            if held or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert held and all(t.endswith("(deleted)") for t in held), held
        assert list(spool.iterdir()) == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert list(spool.iterdir()) == []
