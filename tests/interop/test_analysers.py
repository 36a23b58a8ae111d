"""Our merged and resolved logs fed to Debian's GoAccess, webalizer and AWStats.

A farm of four backends in four zones (UTC, New York across its DST end, +0100, +0530) is
merged by our mergelogs and resolved by our splitwr (a --hosts map, no DNS). Each analyser
must read the merged and the resolved log with no more rejected lines than the original logs
give it (its own limits: lines over 4 KB, ``"-" 408`` lines), and report the same hits and
bytes as for the original logs together; visitors and visits, which the originals cannot
show (every line there comes from pen's address), must agree between merged and resolved.
``--keep-zones`` must lose lines in webalizer and AWStats: that is what the zone default fixes,
and it shows the test can fail. A farm mixing common and combined shows why mergelogs warns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from bench import genlogs

from tests.interop.analysers import (
    AWSTATS,
    GOACCESS,
    WEBALIZER,
    Totals,
    awstats,
    goaccess,
    webalizer,
)

pytestmark = [
    pytest.mark.skipif(not all(os.path.exists(p) for p in (GOACCESS, WEBALIZER, AWSTATS))
                       and not os.environ.get("CI"),
                       reason="goaccess, webalizer and awstats not installed (CI installs them)"),
    pytest.mark.timeout(300),  # a dozen analyser runs on a shared, loaded machine
]
FARM = genlogs.Farm(backends=4, zones=("UTC", "America/New_York", "+0100", "+0530"),
                    formats=("combined",), rate=20.0, requests=4000, seed=3,
                    idle_share=0.003, huge_share=0.003)
BIN = Path(sys.executable).parent
LONG = 4096
"""GoAccess and webalizer read a line in 4 KB: a longer one is rejected (GoAccess counts it
as two failed requests)."""


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The farm's original logs, our merged log (default and --keep-zones) and the resolved."""
    root = tmp_path_factory.mktemp("interop")
    genlogs.write_farm(FARM, root / "farm")
    originals = [root / "farm" / genlogs.access_file(i + 1) for i in range(FARM.backends)]
    merge = [sys.executable, "-m", "mergelogs", "-p", str(root / "farm" / genlogs.PEN_FILE),
             *(f"{FARM.address(i)}:{path}" for i, path in enumerate(originals))]
    merged, kept = root / "access_log", root / "access_log.kept"
    subprocess.run([*merge, "-o", str(merged)], check=True, timeout=120)
    subprocess.run([*merge, "--keep-zones", "-o", str(kept)], check=True, timeout=120)
    clients = dict.fromkeys(line.split(b" ", 1)[0] for line in merged.read_bytes().splitlines())
    hosts = root / "hosts"
    hosts.write_bytes(b"".join(b"%s client%d.example.net\n" % (address, n)
                               for n, address in enumerate(clients)))
    resolved = root / "access_log.resolved"
    subprocess.run([str(BIN / "splitwr"), "--hosts", str(hosts), "--nameserver", "127.0.0.1:9",
                    "--retries", "0", "--timeout", "0.5", "-o", str(resolved), str(merged)],
                   check=True, timeout=120)
    names = {line.split(b" ", 1)[0] for line in resolved.read_bytes().splitlines()}
    assert all(name.endswith(b".example.net") for name in names)  # every client resolved
    assert len(names) == len(clients)
    return root, originals, merged, kept, resolved


def limits(path: Path) -> tuple[int, int, int]:
    """Lines of a log, those over 4 KB (GoAccess and webalizer reject them) and the
    ``"-" 408`` ones (AWStats calls them corrupted)."""
    lines = path.read_bytes().splitlines()
    return (len(lines), sum(len(line) > LONG for line in lines),
            sum(b'] "-" 408 ' in line for line in lines))


def summed(parts: list[Totals]) -> Totals:
    """Totals of separate runs added up (visitors and visits do not add up: left 0)."""
    return Totals(hits=sum(p.hits for p in parts), bytes=sum(p.bytes for p in parts),
                  rejected=sum(p.rejected for p in parts), visitors=0,
                  pages=sum(p.pages for p in parts))


def test_goaccess_reads_merged_and_resolved_as_the_originals(logs):
    root, originals, merged, _, resolved = logs
    original = goaccess(originals, root / "goaccess-originals")
    ours = goaccess([merged], root / "goaccess-merged")
    named = goaccess([resolved], root / "goaccess-resolved", names=True)
    lines, long, _ = limits(merged)
    assert long > 0 and (original.hits, original.rejected) == (lines - long, 2 * long)
    for report in (ours, named):
        assert (report.hits, report.bytes, report.rejected) == (
            original.hits, original.bytes, original.rejected)
    assert ours.visitors == named.visitors > 100


def separate_runs(analyser: Callable[[Path, Path], Totals], logs) -> list[Totals]:
    """An analyser that reads one log a run, over the originals (added up), the merged, the
    resolved and the --keep-zones log."""
    root, originals, merged, kept, resolved = logs
    name = analyser.__name__
    original = summed([analyser(path, root / f"{name}-{path.name}") for path in originals])
    return [original, *(analyser(path, root / f"{name}-{path.name}")
                        for path in (merged, resolved, kept))]


def test_webalizer_reads_merged_and_resolved_as_the_originals(logs):
    original, ours, named, kept = separate_runs(webalizer, logs)
    lines, long, _ = limits(logs[2])
    assert (original.hits, original.rejected) == (lines - long, long)
    for report in (ours, named):
        assert (report.hits, report.pages, report.rejected) == (
            original.hits, original.pages, original.rejected)
        # the history keeps KB per run, rounded: four runs add up to within 4 KB
        assert abs(report.bytes - original.bytes) <= FARM.backends
    assert (ours.visitors, ours.visits, ours.bytes) == (named.visitors, named.visits,
                                                         named.bytes)
    assert ours.visitors > 100
    assert kept.rejected > original.rejected + 1000 and kept.hits < original.hits - 1000


def test_awstats_reads_merged_and_resolved_as_the_originals(logs):
    original, ours, named, kept = separate_runs(awstats, logs)
    lines, _, idle = limits(logs[2])
    assert idle > 0 and (original.hits, original.rejected) == (lines - idle, idle)
    for report in (ours, named):
        assert (report.hits, report.bytes, report.pages, report.rejected) == (
            original.hits, original.bytes, original.pages, original.rejected)
    assert (ours.visitors, ours.visits) == (named.visitors, named.visits)
    assert ours.visitors > 100
    assert kept.rejected > original.rejected + 1000 and kept.hits < original.hits - 1000


def test_mixed_formats_are_noted_and_are_what_goaccess_rejects(tmp_path):
    """Backends logging common and combined: mergelogs says so, and GoAccess ``COMBINED``
    rejects exactly the common lines (analysers read one format)."""
    farm = genlogs.Farm(backends=2, zones=("UTC",), formats=("combined", "common"),
                        rate=20.0, requests=400, seed=4, huge_share=0.0)
    genlogs.write_farm(farm, tmp_path / "farm")
    logs = [tmp_path / "farm" / genlogs.access_file(i + 1) for i in range(2)]
    merged = tmp_path / "access_log"
    done = subprocess.run([sys.executable, "-m", "mergelogs", "-p",
                           str(tmp_path / "farm" / genlogs.PEN_FILE), "-o", str(merged),
                           *(f"{farm.address(i)}:{path}" for i, path in enumerate(logs))],
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stderr.count("mix log formats") == 1
    common = len(logs[1].read_bytes().splitlines())
    report = goaccess([merged], tmp_path / "goaccess")
    assert report.rejected == common and report.hits == 400 - common
