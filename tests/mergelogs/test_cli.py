"""The mergelogs command line: every option, every error path and exit code."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mergelogs.cli import main
from tests.mergelogs.conftest import BASE, clf, pen

A = [clf("10.0.0.100", BASE, b"GET /a HTTP/1.1"), clf("10.0.0.100", BASE + 2, b"GET /c HTTP/1.1")]
B = [clf("10.0.0.100", BASE + 1, b"GET /b HTTP/1.1"), b"not a log line\n"]
PEN = [pen("192.0.2.1", BASE, "10.0.0.1", b"GET /a HTTP/1.1"),
       pen("192.0.2.2", BASE + 1, "10.0.0.2", b"GET /b HTTP/1.1")]
MERGED = [A[0].replace(b"10.0.0.100", b"192.0.2.1"), B[0].replace(b"10.0.0.100", b"192.0.2.2"),
          B[1], A[1]]


@pytest.fixture
def farm(write):
    return write("pen.log", PEN), write("a.log", A), write("b.log", B)


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_merges_to_stdout(farm):
    penlog, a, b = farm
    result = run("-p", penlog, f"10.0.0.1:{a}", f"10.0.0.2:{b}")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"".join(MERGED)
    assert result.stderr == ""


def test_output_file_is_atomic_and_rejects_listed(farm, tmp_path):
    penlog, a, b = farm
    out, rej = tmp_path / "out.log", tmp_path / "rejects"
    result = run("-p", penlog, "-o", str(out), "-r", str(rej), f"10.0.0.1:{a}", f"10.0.0.2:{b}")
    assert result.exit_code == 0
    assert result.stdout_bytes == b""
    assert out.read_bytes() == b"".join(MERGED)
    assert rej.read_bytes().splitlines() == [
        f"{b}:2: unparsable: not a log line".encode(),
        f"{a}:2: no pen.log entry: ".encode() + A[1].rstrip(b"\n"),
    ]
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.log", "b.log", "pen.log", "out.log", "rejects"])


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_run_leaves_no_output_file(farm, tmp_path):
    penlog, a, _ = farm
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"".join(A))[:-12])
    out = tmp_path / "out.log"
    result = run("-p", penlog, "-o", str(out), f"10.0.0.1:{a}", f"10.0.0.2:{broken}")
    assert result.exit_code == 2
    assert "broken.gz" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_inputs(farm, tmp_path, compress):
    penlog, a, b = farm
    packed = tmp_path / "b.log.x"
    packed.write_bytes(compress(b"".join(B)))
    packed_pen = tmp_path / "pen.log.x"
    packed_pen.write_bytes(compress(b"".join(PEN)))
    result = run("-p", str(packed_pen), f"10.0.0.1:{a}", f"10.0.0.2:{packed}")
    assert result.stdout_bytes == b"".join(MERGED)


def test_stdin_backend(farm):
    penlog, a, _ = farm
    result = run("-p", penlog, f"10.0.0.1:{a}", "10.0.0.2:-", input=b"".join(B))
    assert result.stdout_bytes == b"".join(MERGED)


def test_ipv6_backend_spec(write):
    log = write("v6.log", [clf("::1", BASE, b"GET /6 HTTP/1.1")])
    penlog = write("pen6.log", [pen("2001:db8::5", BASE, "2001:db8::1", b"GET /6 HTTP/1.1")])
    result = run("-p", penlog, f"[2001:db8::1]:{log}")
    assert result.stdout_bytes.startswith(b"2001:db8::5 - - [")


def test_utc_summary_and_compat_flags(farm):
    penlog, a, b = farm
    result = run("-p", penlog, "-c", "-d", "--utc", "--summary", "-j", "5", "-t", "0",
                 f"10.0.0.1:{a}", f"10.0.0.2:{b}")
    assert result.exit_code == 0
    assert b"+0000]" in result.stdout_bytes
    assert "mergelogs summary" in result.stderr
    assert "no pen.log entry" in result.stderr  # -d tells about each reject


def test_max_unmatched_gives_exit_1(farm):
    penlog, a, b = farm
    args = ["-p", penlog, f"10.0.0.1:{a}", f"10.0.0.2:{b}"]
    assert run("--max-unmatched", "50", *args).exit_code == 0
    result = run("--max-unmatched", "10", *args)
    assert result.exit_code == 1
    assert "unmatched" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["10.0.0.1:{a}"], "missing -p"),
        (["-p", "{pen}"], "no SERVER:LOGFILE"),
        (["-p", "{pen}", "nocolon"], "is not server:logfile"),
        (["-p", "{pen}", "10.0.0.1:"], "is not server:logfile"),
        (["-p", "{pen}", "[::1:{a}"], "is not server:logfile"),
        (["-p", "{pen}", "no.such.host.invalid:{a}"], "unknown server address"),
        (["-p", "{pen}", "10.0.0.1:/nonexistent/log"], "/nonexistent/log"),
        (["-p", "/nonexistent/pen.log", "10.0.0.1:{a}"], "/nonexistent/pen.log"),
        (["-p", "-", "10.0.0.1:-"], "only one input"),
        (["-p", "{pen}", "-j", "x", "10.0.0.1:{a}"], "Invalid value"),
        (["-p", "{pen}", "--bogus", "10.0.0.1:{a}"], "No such option"),
        (["-p", "{pen}", "-o", "/nonexistent/dir/out", "10.0.0.1:{a}"], "/nonexistent/dir"),
    ],
)
def test_usage_and_io_errors_exit_2(farm, args, message):
    penlog, a, _ = farm
    result = run(*(x.format(pen=penlog, a=a) for x in args))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_console_script_runs_as_a_filter(farm):
    penlog, a, _ = farm
    done = subprocess.run([sys.executable, "-m", "mergelogs", "-p", penlog, "10.0.0.1:-"],
                          input=b"".join(A), capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith(b"192.0.2.1 ")
    assert done.stderr == b""


def test_verbose_reports_on_stderr_even_off_a_terminal(farm):
    penlog, a, b = farm
    result = run("-p", penlog, "-v", f"10.0.0.1:{a}", f"10.0.0.2:{b}")
    assert result.exit_code == 0
    assert "mergelogs summary" in result.stderr
    assert "10.0.0.2" in result.stderr
    assert result.stdout_bytes == b"".join(MERGED)


def test_reorder_window_and_max_skew_options(write):
    early = [clf("1.1.1.1", BASE + 10, b"GET /a HTTP/1.1")] * 600
    later = [clf("1.1.1.1", BASE + 40, b"GET /b HTTP/1.1")] * 600
    late = clf("1.1.1.1", BASE, b"GET /late HTTP/1.1")
    log = write("late.log", [*early, *later, late])
    penlog = write("pen.log", [])
    ordered = run("-p", penlog, "--reorder", "60", f"10.0.0.1:{log}")
    assert ordered.stdout_bytes == b"".join([late, *early, *later])
    unordered = run("-p", penlog, "--reorder", "5", "-v", f"10.0.0.1:{log}")
    assert unordered.stdout_bytes == b"".join([*early, late, *later])
    assert re.search(r"1,201 .* 1 .*\+0\.0 s", unordered.stderr)
    assert run("-p", penlog, "--max-skew", "-1", f"10.0.0.1:{log}").exit_code == 2


def test_blank_lines_crlf_and_missing_final_newline_survive(write):
    body = (b"\n" + clf("10.0.0.100", BASE, b"GET /a HTTP/1.1").replace(b"\n", b"\r\n")
            + b"\n" + clf("10.0.0.100", BASE + 1, b"GET /b HTTP/1.1").rstrip(b"\n"))
    log = write("raw.log", [body])
    penlog = write("pen.log", [pen("192.0.2.1", BASE, "10.0.0.1", b"GET /a HTTP/1.1")])
    result = run("-p", penlog, f"10.0.0.1:{log}")
    restored = body.replace(b"10.0.0.100 - - [25", b"192.0.2.1 - - [25", 1)
    assert result.stdout_bytes == restored + b"\n"


def test_progress_bar_renders_on_a_terminal(farm):
    from io import StringIO

    from rich.console import Console

    from mergelogs.cli import _Reporter
    from mergelogs.streams import open_input

    inputs = [open_input(name) for name in farm[1:]]
    screen = StringIO()
    reporter = _Reporter([i.size for i in inputs],
                         Console(file=screen, force_terminal=True, width=100), True)
    reporter.position = lambda: sum(i.position() for i in inputs)
    with reporter.progress:
        for line in inputs[0].stream:
            reporter.lines(8192)
            assert line
        reporter.progress.refresh()
    for source in inputs:
        source.close()
    assert "merging" in screen.getvalue()
    assert "16,384 lines" in screen.getvalue()
