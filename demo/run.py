"""The nightly job of a farm behind pen, run end to end on loopback in a few seconds.

1. three web servers of ours (:mod:`demo.backend`) on 127.0.1.1-3, each writing a combined log;
2. our pen in front of them (``pen -l pen.log -p pen.pid``, its own command line, a daemon);
3. clients on 127.0.0.2-9 send ``--requests`` requests over keep-alive connections;
4. halfway, the logs are rotated as logrotate does: ``mv`` each log to ``.1``, then HUP the
   process that writes it (pen by its pid file, each web server by its own);
5. everything is stopped by pid; each day's log is its two halves, ``.1`` and the current one;
6. ``mergelogs`` restores the clients, ``splitwr --hosts`` names them; a summary and the
   analysers' command lines follow.

Every process started here is stopped here, by its pid, also on an error or Ctrl-C.
Exit status: 0 when every request came back once with its client, 1 otherwise, 2 when a step
failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.load import Sent, run_load
from webresolve.hostsfile import parse_hosts

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ROOT / "sample_logs" / "demo.hosts"
BACKENDS = ("127.0.1.1", "127.0.1.2", "127.0.1.3")
CLIENTS = [f"127.0.0.{n}" for n in range(2, 10)]
NO_DNS = "127.0.0.1:9"
"""splitwr's nameserver: the discard port on loopback, so an address missing from the hosts
map is asked nowhere off this machine (and fails at once)."""
START_SECONDS = 15.0
STOP_SECONDS = 20.0
STEP_SECONDS = 300.0
_REQUEST = re.compile(rb'^(\S+) \S+ \S+ \[[^]]+\] "(\S+) (\S+) HTTP/1\.[01]"')


class DemoError(Exception):
    """A step of the demo failed (exit 2)."""


@dataclass(slots=True)
class Process:
    """A daemon or server we started, known by its pid file."""

    name: str
    pid_file: Path
    popen: subprocess.Popen[bytes] | None = None
    pid: int = 0

    def signal(self, signum: int) -> None:
        if self.pid:
            os.kill(self.pid, signum)

    def stop(self) -> None:
        """TERM by pid, wait (bounded), KILL if it is still there.

        A daemon interrupted while starting is found by the pid file it wrote meanwhile."""
        if not self.pid and self.pid_file.exists():
            text = self.pid_file.read_text().strip()
            self.pid = int(text) if text.isdigit() else 0
        if not self.pid:
            return
        pid, self.pid = self.pid, 0
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while _alive(pid, self.popen) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid, self.popen):
            os.kill(pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()


def _alive(pid: int, popen: subprocess.Popen[bytes] | None) -> bool:
    """Whether ``pid`` still runs (a child of ours is reaped, a daemon is looked up)."""
    if popen is not None and popen.pid == pid:
        return popen.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@dataclass(slots=True)
class Farm:
    """Where everything is and what runs."""

    out: Path
    processes: list[Process] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.out / f"access_log.{name}"

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.timings[label] = time.monotonic() - start

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def _tool(name: str) -> list[str]:
    """Our console script ``name`` from this environment's bin/ (never a peer of the same
    name on PATH, such as Debian's /usr/bin/pen)."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        raise DemoError(f"{script} is missing: run the demo with the project's .venv/bin/python")
    return [str(script)]


def start_backend(farm: Farm, index: int, address: str) -> None:
    """One web server; its port is the first line it prints."""
    name = f"web{index + 1}"
    process = Process(name, farm.out / f"{name}.pid")
    farm.processes.append(process)
    process.popen = subprocess.Popen(
        [sys.executable, "-m", "demo.backend", "--listen", address,
         "--log", str(farm.log(name)), "--pid", str(process.pid_file)],
        stdout=subprocess.PIPE, cwd=ROOT)
    process.pid = process.popen.pid
    assert process.popen.stdout is not None
    line = process.popen.stdout.readline()
    if not line.strip().isdigit():
        raise DemoError(f"web server {name} on {address} did not start")
    farm.ports.append(int(line))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (pen's LISTEN cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_pen(farm: Farm) -> int:
    """pen as a daemon, as an init script starts it; returns its port."""
    port = free_port()
    process = Process("pen", farm.out / "pen.pid")
    farm.processes.append(process)
    servers = [f"{a}:{p}" for a, p in zip(BACKENDS, farm.ports, strict=True)]
    command = [*_tool("pen"), "-l", str(farm.out / "pen.log"), "-p", str(process.pid_file),
               f"127.0.0.1:{port}", *servers]
    started = subprocess.run(command, capture_output=True, timeout=START_SECONDS)
    if started.returncode != 0:
        raise DemoError(f"pen exited {started.returncode}: {started.stderr.decode().strip()}")
    deadline = time.monotonic() + START_SECONDS
    while not process.pid_file.exists() or not process.pid_file.read_text().strip():
        if time.monotonic() > deadline:
            raise DemoError("pen wrote no pid file")
        time.sleep(0.02)
    process.pid = int(process.pid_file.read_text())
    return port


def rotate(farm: Farm) -> None:
    """What logrotate does: rename each log, then HUP its writer so it opens a new one."""
    for process in farm.processes:
        log = farm.out / "pen.log" if process.name == "pen" else farm.log(process.name)
        log.rename(log.with_name(log.name + ".1"))
        process.signal(signal.SIGHUP)


def send_load(farm: Farm, port: int, total: int, console: Console, show: bool) -> list[Sent]:
    """The clients, with a progress bar; the logs are rotated once half the requests are done."""
    sent: list[Sent] = []
    progress = Progress(TextColumn("requests"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                        console=console, disable=not show)
    task = progress.add_task("load", total=total, note="")

    def record(request: Sent) -> None:
        sent.append(request)
        progress.advance(task)
        if len(sent) == total // 2:
            rotate(farm)
            progress.update(task, note="logs rotated (mv + HUP)")

    with progress:
        asyncio.run(run_load(port, CLIENTS, total, min(12, max(1, total // 10)), 1, record))
    return sent


def day_of(path: Path) -> Path:
    """The rotated day's log: the ``.1`` half, then the current one (``cat x.1 x``)."""
    day = path.with_name(path.name + ".day")
    with open(day, "wb") as out:
        for half in (path.with_name(path.name + ".1"), path):
            with open(half, "rb") as part:
                shutil.copyfileobj(part, out)
    return day


def run_tool(name: str, args: list[str]) -> None:
    done = subprocess.run([*_tool(name), *args], capture_output=True, timeout=STEP_SECONDS)
    if done.returncode != 0:
        raise DemoError(f"{name} exited {done.returncode}: {done.stderr.decode().strip()}")


def merge_and_resolve(farm: Farm) -> tuple[Path, Path]:
    """mergelogs over the day's logs, then splitwr with the shipped hosts map."""
    merged, resolved = farm.out / "access_log", farm.out / "access_log.resolved"
    with farm.step("mergelogs"):
        run_tool("mergelogs", [
            "-p", str(day_of(farm.out / "pen.log")),
            *(f"{a}:{day_of(farm.log(f'web{i + 1}'))}" for i, a in enumerate(BACKENDS)),
            "-r", str(farm.out / "rejects"), "-o", str(merged)])
    with farm.step("splitwr"):
        run_tool("splitwr", ["--hosts", str(HOSTS), "--nameserver", NO_DNS, "--lifetime", "1",
                             "-o", str(resolved), str(merged)])
    return merged, resolved


def requests_of(path: Path) -> Counter[tuple[bytes, bytes, bytes]]:
    """(client, method, path) of each line of an access log, counted."""
    found: Counter[tuple[bytes, bytes, bytes]] = Counter()
    with open(path, "rb") as lines:
        for line in lines:
            match = _REQUEST.match(line)
            if match:
                found[match.group(1), match.group(2), match.group(3)] += 1
    return found


def summary(farm: Farm, sent: list[Sent], merged: Path, resolved: Path) -> tuple[Table, bool]:
    """The figures, and whether every request came back exactly once with its client."""
    wanted = Counter((s.client.encode(), s.method.encode(), s.path.encode()) for s in sent)
    got = requests_of(merged)
    restored = sum(min(got[key], count) for key, count in wanted.items())
    with open(HOSTS, encoding="utf-8") as hosts:
        names = {name.encode() for name in parse_hosts(hosts, str(HOSTS)).values()}
    named = requests_of(resolved)
    resolved_lines = sum(c for (client, _, _), c in named.items() if client in names)
    table = Table(title="pen demo: the nightly job", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for index, address in enumerate(BACKENDS):
        name = f"web{index + 1}"
        lines = sum(requests_of(farm.out / f"access_log.{name}.day").values())
        table.add_row(f"requests served by {name} ({address})", f"{lines:,}")
    table.add_row("requests sent (8 client addresses)", f"{len(sent):,}")
    table.add_row("clients restored by mergelogs", f"{restored:,} of {len(sent):,}")
    table.add_row("merged lines", f"{sum(got.values()):,}")
    table.add_row("names resolved by splitwr", f"{resolved_lines:,} lines, "
                  f"{len({c for c, _, _ in named} & names)} of {len(names)} names")
    for label, seconds in farm.timings.items():
        table.add_row(f"seconds: {label}", f"{seconds:.2f}")
    ok = restored == len(sent) == sum(got.values()) and resolved_lines == len(sent)
    return table, ok


AWSTATS_CONF = """\
# the least AWStats needs for a combined log (LogFormat=1) of names (DNSLookup=0)
LogFile="{log}"
LogType=W
LogFormat=1
SiteDomain="www.example.com"
HostAliases="localhost 127.0.0.1"
DNSLookup=0
DirData="{out}/awstats"
"""


def shown(path: Path) -> Path:
    """``path`` as the user will type it: relative to where the demo runs, when inside."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def analyser_commands(out: Path) -> str:
    """What feeds each analyser (resolved logs need GoAccess's --no-ip-validation); writes
    the AWStats configuration its command names."""
    (out / "awstats").mkdir(exist_ok=True)
    (out / "awstats.demo.conf").write_text(
        AWSTATS_CONF.format(log=out / "access_log.resolved", out=out))
    out = shown(out)
    merged, resolved = out / "access_log", out / "access_log.resolved"
    return "\n".join([
        "Feed an analyser:",
        f"  goaccess {merged} --log-format=COMBINED -o {out}/goaccess.html",
        f"  goaccess {resolved} --log-format=COMBINED --no-ip-validation"
        f" -o {out}/goaccess-names.html",
        f"  mkdir -p {out}/webalizer && webalizer -F clf -n www.example.com"
        f" -o {out}/webalizer {resolved}",
        f"  perl /usr/lib/cgi-bin/awstats.pl -config=demo -configdir={out} -update",
    ])


def run(out: Path, total: int, console: Console, show: bool) -> bool:
    """The whole job; True when every request came back once with its client."""
    farm = Farm(out)
    try:
        with farm.step("start pen and 3 web servers"):
            for index, address in enumerate(BACKENDS):
                start_backend(farm, index, address)
            port = start_pen(farm)
        with farm.step(f"{total:,} requests, rotation halfway"):
            sent = send_load(farm, port, total, console, show)
        with farm.step("stop by pid"):
            farm.stop_all()
    finally:
        farm.stop_all()
    (out / "sent.tsv").write_text("".join(f"{s.client}\t{s.method}\t{s.path}\t{s.status}\n"
                                          for s in sent))
    merged, resolved = merge_and_resolve(farm)
    table, ok = summary(farm, sent, merged, resolved)
    Console().print(table)
    commands = analyser_commands(out)
    print(f"Logs in {shown(out)}/: access_log (clients restored), access_log.resolved (names)")
    print(commands)
    return ok


def _terminate(signum: int, frame: object) -> None:
    """TERM: unwind like Ctrl-C, so every process is stopped by the finally clauses."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests to send [3000]")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "demo",
                        help="output directory, emptied first [build/demo]")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="progress bar even when stderr is not a terminal")
    args = parser.parse_args(argv)
    if args.requests < 2:
        parser.error("--requests must be at least 2")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the demo even when started from a shell's background job, which starts
    # it with SIGINT ignored (Python then installs no handler of its own)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = Console(stderr=True)
    try:
        ok = run(args.out.resolve(), args.requests, console,
                 args.verbose or console.is_terminal)
    except KeyboardInterrupt:
        return 130
    except (DemoError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    if not ok:
        print("demo: some requests did not come back once with their client", file=sys.stderr)
        return 1
    return 0
