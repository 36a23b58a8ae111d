"""The merge over worker processes gives the one-process merge, byte for byte."""

from __future__ import annotations

import gzip
import os

import pytest
from bench import genlogs
from click.testing import CliRunner

from mergelogs.cli import main
from mergelogs.merge import Backend, Merger, Reject, Settings
from mergelogs.parallel import ParallelMerge, plan

FARM = genlogs.Farm(backends=5, formats=genlogs.FORMATS, rate=300.0, requests=6000, skew=3.0,
                    seed=11, idle_share=0.01, huge_share=0.003)
SETTINGS = Settings(zone="+0000")
"""What the command line chooses for FARM: its zones differ and its first backend is in UTC."""


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    out = tmp_path_factory.mktemp("farm")
    genlogs.write_farm(FARM, out)
    backends = [Backend(FARM.address(i), str(out / genlogs.access_file(i + 1)))
                for i in range(FARM.backends)]
    return out, backends


def serial(out, backends):
    rejects: list[Reject] = []
    logs = [open(b.name, "rb") for b in backends]  # noqa: SIM115
    with open(out / genlogs.PEN_FILE, "rb") as pen:
        merger = Merger(backends, logs, pen, SETTINGS, rejects.append)
        lines = b"".join(line for batch in merger.batches() for line in batch)
    for log in logs:
        log.close()
    return lines, rejects, merger.result()


def test_plan_balances_and_keeps_every_backend_once():
    assert plan([100, 10, 10, 80, None], 2) == [[0, 1, 2], [3, 4]]
    assert plan([5, 5], 8) == [[0], [1]]
    assert plan([None, None, None], 1) == [[0, 1, 2]]
    groups = plan([3, 1, 4, 1, 5, 9, 2, 6], 3)
    assert sorted(i for g in groups for i in g) == list(range(8)) and len(groups) == 3


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_workers_give_the_one_process_merge(farm, jobs):
    out, backends = farm
    lines, rejects, result = serial(out, backends)
    got: list[Reject] = []
    groups = plan([1] * len(backends), jobs)
    merge = ParallelMerge(str(out / genlogs.PEN_FILE), backends, groups, SETTINGS, got.append)
    assert b"".join(merge) == lines
    assert got == rejects and rejects
    assert merge.result() == result


def test_cli_jobs_give_the_same_files(farm, tmp_path):
    out, backends = farm
    args = ["-p", str(out / genlogs.PEN_FILE), *(f"{b.address}:{b.name}" for b in backends)]
    for jobs in ("1", "4"):
        result = CliRunner().invoke(main, ["--jobs", jobs, "-o", str(tmp_path / f"out{jobs}"),
                                           "-r", str(tmp_path / f"rej{jobs}"), *args])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "out1").read_bytes() == (tmp_path / "out4").read_bytes()
    assert (tmp_path / "rej1").read_bytes() == (tmp_path / "rej4").read_bytes()


def test_a_worker_read_error_exits_2_naming_the_file(farm, tmp_path):
    out, backends = farm
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(os.urandom(100_000))[:50_000])
    args = ["--jobs", "2", "-p", str(out / genlogs.PEN_FILE), f"{backends[0].address}:{broken}",
            f"{backends[1].address}:{backends[1].name}", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert str(broken) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_abandoned_output_stops_the_workers(farm):
    out, backends = farm
    merge = ParallelMerge(str(out / genlogs.PEN_FILE), backends, plan([1] * 5, 2), Settings())
    blocks = iter(merge)
    assert next(blocks)
    blocks.close()
    assert not any(proc.is_alive() for proc in merge._procs)


def test_no_workers_to_be_had_merges_in_one_process(farm, tmp_path, monkeypatch):
    import multiprocessing.context

    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    out, backends = farm
    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refuse)
    args = ["--jobs", "2", "-p", str(out / genlogs.PEN_FILE),
            *(f"{b.address}:{b.name}" for b in backends), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").read_bytes() == serial(out, backends)[0]
