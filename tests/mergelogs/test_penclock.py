"""pen.log on a bad day: a far-future line, a run of them, a step of pen's clock, a pause."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import genlogs
from click.testing import CliRunner

from mergelogs.cli import main
from mergelogs.penclock import AGAINST, CONFIRM, PenClock

FARM = genlogs.Farm(backends=2, rate=20.0, requests=2000, seed=5)


def write_farm(out: Path, farm: genlogs.Farm = FARM) -> tuple[list[bytes], list[Path]]:
    genlogs.write_farm(farm, out)
    pen = (out / genlogs.PEN_FILE).read_bytes().splitlines(keepends=True)
    return pen, [out / genlogs.access_file(b + 1) for b in range(farm.backends)]


def stepped(line: bytes, seconds: int) -> bytes:
    client, epoch, rest = line.split(b" ", 2)
    return b"%s %d %s" % (client, int(epoch) + seconds, rest)


def merge(pen: list[bytes], logs: list[Path], tmp_path: Path, *extra: str):
    penlog = tmp_path / "pen.edited"
    penlog.write_bytes(b"".join(pen))
    rejects = tmp_path / "rejects"
    args = ["--summary", "-p", str(penlog), "-r", str(rejects), "-o", str(tmp_path / "out"),
            *extra, *(f"10.0.0.{i + 1}:{log}" for i, log in enumerate(logs))]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    matched = sum(int(row.split("│")[4].replace(",", "")) for row in result.stderr.splitlines()
                  if row.startswith("│ 10.0.0."))
    return matched, result.stderr, rejects.read_bytes().splitlines()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    out = tmp_path_factory.mktemp("farm")
    pen, logs = write_farm(out)
    baseline, _, _ = merge(pen, logs, out)
    assert baseline > 1900  # what a clean pen.log gives
    return pen, logs, baseline


def test_one_far_future_line_is_set_aside_and_reading_goes_on(farm, tmp_path):
    pen, logs, baseline = farm
    bad = b"198.51.100.9 9999999999 10.0.0.1 GET /x HTTP/1.1\n"
    matched, err, rejects = merge(pen[:499] + [bad] + pen[499:], logs, tmp_path)
    assert matched == baseline
    assert "1 set aside" in err and "0 clock steps" in err
    assert f"{tmp_path / 'pen.edited'}:500: time far from its neighbours': ".encode() \
        + bad.rstrip(b"\n") in rejects
    assert "found no pen.log entry" not in err


def test_ten_lines_stepped_ahead_are_set_aside(farm, tmp_path):
    pen, logs, baseline = farm
    edited = pen[:1000] + [stepped(line, 10**7) for line in pen[1000:1010]] + pen[1010:]
    matched, err, rejects = merge(edited, logs, tmp_path)
    assert matched >= baseline - 10
    assert "10 set aside" in err
    assert sum(b"time far from its neighbours'" in line for line in rejects) == 10


@pytest.mark.parametrize("seconds", [10**7, -(10**7), 5000])
def test_a_step_of_pens_clock_is_followed(farm, tmp_path, seconds):
    pen, logs, baseline = farm
    edited = pen[:1000] + [stepped(line, seconds) for line in pen[1000:]]
    matched, err, _ = merge(edited, logs, tmp_path)
    assert matched >= baseline * 0.99
    assert "1 clock steps followed" in err and "0 set aside" in err
    assert "found no pen.log entry" not in err


def test_a_pause_in_traffic_is_no_step(tmp_path):
    """Two farms two hours apart, one after the other: pen.log and the backends jump."""
    first, second = tmp_path / "one", tmp_path / "two"
    pen_a, logs_a = write_farm(first, genlogs.Farm(backends=2, rate=20.0, requests=1000,
                                                   seed=5))
    pen_b, logs_b = write_farm(second, genlogs.Farm(backends=2, rate=20.0, requests=1000,
                                                    seed=6, start=FARM.start + 7200))
    logs = []
    for a, b in zip(logs_a, logs_b, strict=True):
        joined = tmp_path / a.name
        joined.write_bytes(a.read_bytes() + b.read_bytes())
        logs.append(joined)
    matched, err, _ = merge(pen_a + pen_b, logs, tmp_path)
    assert matched > 1900
    assert "0 clock steps followed" in err and "0 set aside" in err


def test_most_lines_unmatched_warn_even_without_summary(farm, tmp_path):
    pen, logs, _ = farm
    penlog = tmp_path / "pen.log"
    penlog.write_bytes(b"".join(pen[:100]))
    result = CliRunner().invoke(main, ["-p", str(penlog), "-o", str(tmp_path / "out"),
                                       *(f"10.0.0.{i + 1}:{log}" for i, log in enumerate(logs))])
    assert result.exit_code == 0
    # the farm mixes common and combined logs, which has a warning of its own
    lines = [line for line in result.stderr.splitlines() if "mix log formats" not in line]
    assert len(lines) == 1 and lines[0].startswith("mergelogs: warning: ")
    assert "found no pen.log entry" in lines[0]


def entry(n: int, epoch: int) -> tuple[int, int, tuple[str, bytes], bytes, bytes]:
    return n, epoch, ("10.0.0.1", b"GET / HTTP/1.1"), b"192.0.2.1", b"line %d\n" % n


def test_clock_core_outlier_then_run_then_verdicts():
    clock = PenClock(600, 120)
    admitted = []
    for n in range(20):
        admitted += clock.feed(entry(n, 1000 + n))
    admitted += clock.feed(entry(20, 10**9))
    for n in range(21, 21 + AGAINST):
        admitted += clock.feed(entry(n, 1000 + n))
    assert [e[0] for e in clock.set_aside] == [20] and clock.outliers == 1
    assert len(admitted) == 20 + AGAINST and not clock.suspecting
    for n in range(100, 100 + CONFIRM):
        assert clock.feed(entry(n, 50_000 + n)) == []
    assert clock.holding
    assert clock.settle(second=1100, needed=1800) == []  # the backends are not there yet
    for _ in range(20):
        clock.observe(("10.0.0.1", b"GET / HTTP/1.1"), 1100)
    shifted = clock.settle(second=1200, needed=1900)
    assert clock.steps == 1 and clock.step == 50_100 - 1036
    assert [e[1] for e in shifted] == [50_000 + n - clock.step for n in range(100, 116)]


@pytest.mark.parametrize("rate", [0.002, 0.0005])
def test_a_quiet_log_loses_nothing(tmp_path, rate):
    """Entries further apart than the jitter, from the first line to the last."""
    pen, logs = write_farm(tmp_path, genlogs.Farm(backends=2, rate=rate, requests=600, seed=2))
    matched, err, _ = merge(pen, logs, tmp_path)
    assert matched >= 595
    assert "0 set aside" in err and "0 clock steps" in err
