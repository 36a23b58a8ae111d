"""Run Debian's GoAccess, webalizer and AWStats on access logs and read their own reports.

Each runner works only inside the directory it is given, with a configuration written there
(no global configuration, no DNS, no network), and returns the figures of the analyser's own
output files: GoAccess's JSON report, webalizer's history file (and its record counts on
stdout), AWStats's data file.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

GOACCESS = "/usr/bin/goaccess"
WEBALIZER = "/usr/bin/webalizer"
AWSTATS = "/usr/lib/cgi-bin/awstats.pl"
TIMEOUT = 120


@dataclass(frozen=True, slots=True)
class Totals:
    """What an analyser reports for the logs it read."""

    hits: int
    """Requests it counted."""
    bytes: int
    """Bytes sent (webalizer: KB)."""
    rejected: int
    """Lines it read and did not count (failed, ignored, bad, corrupted, dropped)."""
    visitors: int
    """Unique visitors (GoAccess), sites (webalizer), unique hosts (AWStats)."""
    visits: int = 0
    """Visits (webalizer, AWStats)."""
    pages: int = 0
    """Pages (webalizer, AWStats)."""


def goaccess(logs: list[Path], workdir: Path, names: bool = False) -> Totals:
    """GoAccess over ``logs`` in one run (``names``: hosts are names, not addresses)."""
    workdir.mkdir(parents=True)
    report = workdir / "report.json"
    options = ["--no-ip-validation"] if names else []
    subprocess.run([GOACCESS, "--no-global-config", "--log-format=COMBINED", *options,
                    "-o", str(report), *map(str, logs)], cwd=workdir, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=TIMEOUT, check=True)
    general = json.loads(report.read_text())["general"]
    return Totals(hits=general["valid_requests"], bytes=general["bandwidth"],
                  rejected=general["failed_requests"], visitors=general["unique_visitors"])


def webalizer(log: Path, workdir: Path) -> Totals:
    """webalizer over one log, not incremental, no DNS; figures of its history file."""
    workdir.mkdir(parents=True)
    config = workdir / "webalizer.conf"
    history = workdir / "webalizer.hist"
    config.write_text(f"LogType clf\nOutputDir {workdir}\nHistoryName {history}\n"
                      "Incremental no\nDNSChildren 0\nQuiet no\n")
    done = subprocess.run([WEBALIZER, "-c", str(config), "-N", "0", "-o", str(workdir),
                           str(log)], cwd=workdir, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=TIMEOUT,
                          check=True)
    counts = re.search(r"(\d+) records(?: \(([^)]*)\))?", done.stdout)
    assert counts is not None, done.stdout + done.stderr
    rejected = sum(int(n) for n in re.findall(r"(\d+) (?:ignored|bad)", counts.group(2) or ""))
    hits = kbytes = sites = pages = visits = 0
    for row in history.read_text().splitlines():
        if row.startswith("#"):
            continue
        # month year hits files sites kbytes first_day last_day pages visits
        fields = [int(field) for field in row.split()]
        hits += fields[2]
        sites += fields[4]
        kbytes += fields[5]
        pages += fields[8]
        visits += fields[9]
    return Totals(hits=hits, bytes=kbytes, rejected=rejected, visitors=sites, visits=visits,
                  pages=pages)


def awstats(log: Path, workdir: Path) -> Totals:
    """AWStats over one log (combined, no DNS); figures of its data files' sections."""
    workdir.mkdir(parents=True)
    (workdir / "awstats.test.conf").write_text(
        f'LogFile="{log}"\nLogType=W\nLogFormat=1\nSiteDomain="www.example.com"\n'
        f'HostAliases="localhost"\nDirData="{workdir}"\nDNSLookup=0\n'
        "AllowToUpdateStatsFromBrowser=0\n")
    subprocess.run(["perl", AWSTATS, "-config=test", f"-configdir={workdir}", "-update"],
                   cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
                   check=True)
    hits = size = rejected = unique = visits = pages = 0
    data = sorted(workdir.glob("awstats[0-9]*.test.txt"))
    assert data, f"AWStats wrote no data file in {workdir}"
    for path in data:
        sections = _sections(path.read_text(errors="replace"))
        general = {row[0]: row[1:] for row in sections["GENERAL"]}
        # LastUpdate date parsed old new corrupted dropped
        rejected += int(general["LastUpdate"][4]) + int(general["LastUpdate"][5])
        unique += int(general["TotalUnique"][0])
        visits += int(general["TotalVisits"][0])
        for row in sections["TIME"]:
            # hour pages hits bandwidth, then the same for pages not viewed (robots, errors)
            pages += int(row[1])
            hits += int(row[2]) + int(row[5])
            size += int(row[3]) + int(row[6])
    return Totals(hits=hits, bytes=size, rejected=rejected, visitors=unique, visits=visits,
                  pages=pages)


def _sections(text: str) -> dict[str, list[list[str]]]:
    """The BEGIN_X ... END_X sections of an AWStats data file, rows split on spaces."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("BEGIN_"):
            current = sections.setdefault(line.split()[0][6:], [])
        elif line.startswith("END_"):
            current = None
        elif current is not None and line.strip():
            current.append(line.split())
    return sections
