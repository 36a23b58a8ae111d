"""Resolver benchmark: ours vs jdresolve vs a sequential baseline, on loopback DNS servers.

Generates a 50,000-line log over 5,500 IPv4 addresses (about 90 % of them with a PTR).
The clean runs: for each DNS server (our asyncio server answering after --delay, and
dnsmasq at zero delay), every contender once, printing wall time, queries the server saw
and answers lost (addresses that have a name but kept their address); then ours with a
warm --cache. The faulty run: webresolve.testing's misbehaving server (after --delay, 10
addresses that never answer, 50 SERVFAIL, 20 hostile PTRs, 2 % of datagrams dropped),
ours and ``jdresolve -t 3`` alternately, --repeat times, with the median ratio. The memory
run (only when asked): --memory-lines on stdin, the first from a black hole, with our peak
resident size and a check of every line. Run from the repository root:

    .venv/bin/python bench/bench_resolve.py [--delay 0.02] [--runs clean faulty memory]
        [--repeat 3] [--memory-lines 2000000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import dns.name
import dns.rdatatype
import dns.reversename
import uvloop

from webresolve.testing import Behaviour, FakeDns, free_port, start

BIN = Path(sys.executable).parent
DNSMASQ = "/usr/sbin/dnsmasq"
JDRESOLVE = "/usr/bin/jdresolve"


@dataclass
class Result:
    label: str
    seconds: float
    queries: int
    lost: int


def make_log(directory: Path, lines: int, addresses: int, seed: int) -> dict[str, str]:
    """Write ``access_log`` and ``hosts`` into ``directory``; the address -> name map."""
    rng = random.Random(seed)
    pool: set[str] = set()
    while len(pool) < addresses:
        pool.add(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    clients = sorted(pool)
    names = {a: f"client-{i}.isp{i % 7}.example.net" for i, a in enumerate(clients) if i % 10}
    (directory / "hosts").write_text("".join(f"{a} {n}\n" for a, n in names.items()))
    with open(directory / "access_log", "w") as out:
        for n in range(lines):
            client = clients[n] if n < len(clients) else rng.choice(clients)
            out.write(
                f"{client} - - [10/Oct/2023:13:{n // 60 % 60:02d}:{n % 60:02d} -0400] "
                f'"GET /page/{n} HTTP/1.1" 200 {n % 5000} "-" "Mozilla/5.0"\n'
            )
    return names


def lost_answers(output: Path, names: dict[str, str]) -> int:
    """Distinct named addresses still present as an address in ``output``."""
    left = {line.split(" ", 1)[0] for line in output.read_text().splitlines()}
    return len(left & names.keys())


@dataclass(frozen=True)
class Faults:
    """Which named addresses the faulty server mistreats, and how (the same in every process:
    picked from the sorted names)."""

    holes: list[str]
    servfail: list[str]
    hostile: list[str]
    loss: float = 0.02

    @classmethod
    def pick(cls, names: dict[str, str]) -> Faults:
        named = sorted(names)
        return cls(named[5:990:99], named[7:2500:50], named[11:3990:199])

    def sound(self, names: dict[str, str]) -> dict[str, str]:
        """The names still expected in the output."""
        bad = {*self.holes, *self.servfail, *self.hostile}
        return {a: n for a, n in names.items() if a not in bad}


_HOSTILE = [
    dns.name.Name((b'evil" "x', b"example", b"")),
    dns.name.Name((b"new\nline\x1b[31m", b"example", b"")),
    dns.name.from_text("127.1."),
    dns.name.from_text("2130706433."),
    dns.name.from_text("0x7f.1."),
]


class OurServer:
    """Our asyncio DNS server in a child process (``--serve``), counting queries; with
    ``faulty``, webresolve.testing's server mistreating the :class:`Faults` addresses."""

    def __init__(self, hosts: Path, delay: float, faulty: bool = False) -> None:
        kind = "faulty server" if faulty else "our server"
        self.label = f"{kind}, {delay * 1000:.0f} ms"
        self.cmd = [sys.executable, __file__, "--serve", str(hosts), "--delay", str(delay)]
        if faulty:
            self.cmd.append("--faulty")

    def __enter__(self) -> OurServer:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def queries(self) -> int:
        """Ask the child for its count so far (SIGUSR1 -> one line on stdout)."""
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        return int(self.proc.stdout.readline())

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class Dnsmasq:
    """dnsmasq answering from the hosts file at once; queries counted from its log."""

    label = "dnsmasq, 0 ms"

    def __init__(self, hosts: Path, log: Path) -> None:
        self.hosts = hosts
        self.log = log

    def __enter__(self) -> Dnsmasq:
        self.port = free_port()
        self.logfile = open(self.log, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "-C", "/dev/null", "--port", str(self.port),
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--addn-hosts", str(self.hosts), "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
             "--local-ttl=3600", "--cache-size=0", "--log-queries", "--log-facility=-"],
            stderr=self.logfile,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while "started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dnsmasq did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return self

    def queries(self) -> int:
        self.logfile.flush()
        return len(re.findall(r"query\[", self.log.read_text()))

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.logfile.close()


def timed(
    label: str, server: OurServer | Dnsmasq, names: dict[str, str], output: Path,
    run: Callable[[], None],
) -> Result:  # fmt: skip
    before = server.queries()
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    return Result(label, seconds, server.queries() - before, lost_answers(output, names))


def contenders(work: Path, port: int, concurrency: list[int]) -> dict[str, Callable[[], None]]:
    log, out = work / "access_log", work / "out"
    ours = [str(BIN / "webresolve"), "--nameserver", f"127.0.0.1:{port}", "-o", str(out)]
    env = {**os.environ, "RES_NAMESERVERS": "127.0.0.1", "RES_OPTIONS": f"port:{port}"}

    def jdresolve() -> None:
        with open(out, "wb") as sink:
            subprocess.run([JDRESOLVE, "-n", str(log)], stdout=sink, env=env, check=True)

    runs: dict[str, Callable[[], None]] = {
        f"webresolve -n {n}": functools.partial(_check, [*ours, "-n", str(n), str(log)])
        for n in concurrency
    }
    runs["jdresolve (64 sockets)"] = jdresolve
    return runs


def _check(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True)


def faulty(args: argparse.Namespace, work: Path, names: dict[str, str]) -> None:
    """Ours and ``jdresolve -t 3`` alternately against the faulty server, ``--repeat`` times.

    Ours gets the same time per address as jdresolve (``--lifetime 3``, an attempt each
    second), and runs again with its defaults; all write every line, so "lost" counts
    only the sound names not written. The ratio is jdresolve's time over ours at 3 s.
    """
    faults = Faults.pick(names)
    sound = faults.sound(names)
    log, out = work / "access_log", work / "out"
    print(
        f"\nfaulty run: {len(faults.holes)} black holes, {len(faults.servfail)} SERVFAIL, "
        f"{len(faults.hostile)} hostile PTRs, {faults.loss:.0%} of datagrams dropped"
    )
    with OurServer(work / "hosts", args.delay, faulty=True) as server:
        env = {**os.environ, "RES_NAMESERVERS": "127.0.0.1", "RES_OPTIONS": f"port:{server.port}"}
        ours = [str(BIN / "webresolve"), "--nameserver", f"127.0.0.1:{server.port}",
                "-o", str(out), str(log)]  # fmt: skip
        matched = [*ours, "--timeout", "1", "--lifetime", "3"]

        def jdresolve() -> None:
            with open(out, "wb") as sink:
                cmd = [JDRESOLVE, "-n", "-t", "3", str(log)]
                subprocess.run(cmd, stdout=sink, env=env, check=True)

        runs = {
            "webresolve --lifetime 3": lambda: _check(matched),
            "jdresolve -t 3": jdresolve,
            "webresolve (defaults, lifetime 5)": lambda: _check(ours),
        }
        results: dict[str, list[Result]] = {label: [] for label in runs}
        for rep in range(args.repeat):
            for label, run in runs.items():
                result = timed(label, server, sound, out, run)
                results[label].append(result)
                print(f"  {rep + 1}: {label:<26} {result.seconds:7.2f} s  "
                      f"{result.queries:6d} queries  {result.lost} lost")  # fmt: skip
    mine, theirs, _ = results.values()
    ratios = sorted(t.seconds / m.seconds for m, t in zip(mine, theirs, strict=True))
    print_table(
        server.label + f", median of {args.repeat}",
        [min(rs, key=lambda r: abs(r.seconds - statistics.median(x.seconds for x in rs)))
         for rs in results.values()],
    )  # fmt: skip
    print(f"  jdresolve / ours, pair by pair: {', '.join(f'{r:.1f}x' for r in ratios)}"
          f"; median {statistics.median(ratios):.1f}x")  # fmt: skip


def sequential(work: Path, port: int, names: dict[str, str], sample: int) -> Callable[[], None]:
    """One lookup at a time (``webresolve -n 1``) over the first ``sample`` addresses."""
    lines = (work / "access_log").read_text().splitlines(keepends=True)
    (work / "sample_log").write_text("".join(lines[:sample]))
    cmd = [str(BIN / "webresolve"), "-n", "1", "--nameserver", f"127.0.0.1:{port}"]
    return lambda: _check([*cmd, "-o", str(work / "out"), str(work / "sample_log")])


def print_table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    print(f"  {'contender':<40} {'wall s':>8} {'queries':>8} {'lost':>6} {'vs ours':>8}")
    base = results[0].seconds
    for r in results:
        print(
            f"  {r.label:<40} {r.seconds:8.2f} {r.queries:8d} {r.lost:6d} {r.seconds / base:7.1f}x"
        )


def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = make_log(work, args.lines, args.addresses, args.seed)
        print(
            f"log: {args.lines} lines, {args.addresses} distinct addresses, {len(names)} with a PTR"
        )
        if "clean" in args.runs:
            clean(args, work, names)
        if "faulty" in args.runs:
            faulty(args, work, names)
        if "memory" in args.runs:
            memory(args, work, names)


def memory(args: argparse.Namespace, work: Path, names: dict[str, str]) -> None:
    """``--memory-lines`` lines on stdin, the first from a black hole: webresolve's peak
    resident size (``wait4``), and a check that every line came back, in order, named."""
    faults = Faults.pick(names)
    sound = sorted(faults.sound(names))
    tail = b' - - [10/Oct/2023:13:55:36 -0400] "GET /%d HTTP/1.1" 200 2326 "-" "Mozilla/5.0"\n'
    total = args.memory_lines

    def client(n: int) -> str:
        return faults.holes[0] if n == 0 else sound[n * 7919 % len(sound)]

    with OurServer(work / "hosts", 0.0, faulty=True) as server:
        cmd = [str(BIN / "webresolve"), "--nameserver", f"127.0.0.1:{server.port}", "--summary"]
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        def feed(sink: IO[bytes]) -> None:
            for start in range(0, total, 10_000):
                stop = min(total, start + 10_000)
                sink.write(b"".join(client(n).encode() + tail % n for n in range(start, stop)))
            sink.close()

        feeder = threading.Thread(target=feed, args=(proc.stdin,))
        feeder.start()
        wrong = count = 0
        for count, line in enumerate(proc.stdout, 1):
            n = count - 1
            want = client(n) if n == 0 else names[client(n)]
            wrong += line != want.encode() + tail % n
        feeder.join()
        summary = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
    spilled = re.search(r"lines held on disk\s*│\s*(\d+)", summary)
    print(f"\nmemory run: {total} lines on stdin, the first from a black hole")
    held = spilled.group(1) if spilled else "?"
    print(f"  exit {os.waitstatus_to_exitcode(status)}, {count} lines out, {wrong} wrong, "
          f"peak RSS {usage.ru_maxrss / 1024:.1f} MB, {held} lines held on disk, "
          f"{seconds:.1f} s")  # fmt: skip


def clean(args: argparse.Namespace, work: Path, names: dict[str, str]) -> None:
    """Every contender once against our bench server and against dnsmasq."""
    servers: list[OurServer | Dnsmasq] = [
        OurServer(work / "hosts", args.delay), Dnsmasq(work / "hosts", work / "dnsmasq.log")
    ]  # fmt: skip
    for server in servers:
        with server:
            results = [
                timed(label, server, names, work / "out", run)
                for label, run in contenders(work, server.port, args.concurrency).items()
            ]
            seq = timed(
                f"sequential (-n 1), first {args.sample} lines",
                server, names, work / "out",
                sequential(work, server.port, names, args.sample),
            )  # fmt: skip
            scale = args.addresses / len(_clients(work / "sample_log"))
            results.append(seq)
            results.append(
                Result(f"sequential, extrapolated x{scale:.1f}", seq.seconds * scale,
                       round(seq.queries * scale), 0)
            )  # fmt: skip
            if isinstance(server, OurServer):
                results += cached(work, server, names, args.concurrency[0])
            print_table(server.label, results)


def _clients(log: Path) -> set[str]:
    return {line.split(" ", 1)[0] for line in log.read_text().splitlines()}


def cached(work: Path, server: OurServer, names: dict[str, str], concurrency: int) -> list[Result]:
    """A cold run filling --cache, then the timed warm re-run of the same log."""
    cmd = [str(BIN / "webresolve"), "-n", str(concurrency), "--nameserver",
           f"127.0.0.1:{server.port}", "--cache", str(work / "cache.db"), "-o", str(work / "out"),
           str(work / "access_log")]  # fmt: skip
    cold = timed("webresolve --cache (cold)", server, names, work / "out", lambda: _check(cmd))
    warm = timed("webresolve --cache (warm re-run)", server, names, work / "out",
                 lambda: _check(cmd))  # fmt: skip
    return [cold, warm]


class BenchServer(asyncio.DatagramProtocol):
    """Answers PTR questions from a hosts map after ``delay`` seconds, NXDOMAIN otherwise.

    Cheap on purpose, so that it is not what the benchmark measures: the reply is the
    query's id and question followed by a precomputed answer record (or none), with no
    general message parsing. The EDNS record some clients add is left out of the reply.
    """

    def __init__(self, names: dict[bytes, bytes], delay: float) -> None:
        self.names = names
        self.delay = delay
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Fires once bound."""
        self.transport = transport  # type: ignore[assignment]

    def seen(self) -> int:
        """Queries received so far."""
        return self.queries

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        """Fires per query: schedule its reply."""
        self.queries += 1
        end = question_name_end(data)
        if end < 0:
            return
        asked = data[12 : end + 4]
        record = self.names.get(asked[:-4].lower())
        flags = b"\x81\x80" if record else b"\x81\x83"
        reply = data[:2] + flags + (b"\x00\x01\x00\x01" if record else b"\x00\x01\x00\x00")
        reply += b"\x00\x00\x00\x00" + asked + (record or b"")
        self.loop.call_later(self.delay, self.transport.sendto, reply, addr)  # type: ignore[union-attr]


def question_name_end(data: bytes) -> int:
    """The offset just after the (uncompressed) question name of a query, -1 if malformed."""
    offset = 12
    while offset < len(data) and 0 < data[offset] < 64:
        offset += 1 + data[offset]
    return offset + 1 if offset < len(data) - 4 and data[offset] == 0 else -1


def answer_records(hosts: Path) -> dict[bytes, bytes]:
    """Question-name wire -> PTR answer record (compressed owner) for every hosts line."""
    records = {}
    ptr = dns.rdatatype.PTR
    for line in hosts.read_text().splitlines():
        address, name = line.split()
        qname = dns.reversename.from_address(address).to_wire()
        target = dns.name.from_text(name).to_wire()
        assert qname is not None and target is not None
        records[qname] = b"\xc0\x0c" + struct.pack("!HHIH", ptr, 1, 3600, len(target)) + target
    return records


def serve(hosts: Path, delay: float, faults: bool) -> None:
    """Child process: :class:`BenchServer` (or with ``faults``, webresolve.testing's server
    mistreating the :class:`Faults` addresses) on 127.0.0.1 port 0; prints the port, then on
    each SIGUSR1 the number of queries so far; exits on SIGTERM."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if faults:
            fake = faulty_server(hosts, delay)
            port = await start(fake)
            count: Callable[[], int] = fake.queries.total
            close = fake.close
        else:
            server = BenchServer(answer_records(hosts), delay)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: server, local_addr=("127.0.0.1", 0)
            )
            port = transport.get_extra_info("sockname")[1]
            count = server.seen
            close = transport.close
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(count(), flush=True))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(port, flush=True)
        await stop.wait()
        close()

    uvloop.run(main())


def faulty_server(hosts: Path, delay: float) -> FakeDns:
    """The hosts map served after ``delay``, with the :class:`Faults` of its names."""
    names = dict(line.split() for line in hosts.read_text().splitlines())
    faults = Faults.pick(names)
    server = FakeDns(delay=delay, loss=faults.loss, seed=1)
    for address, name in names.items():
        server.add(address, name, forward=False)
    for address in faults.holes:
        server.add(address, None, Behaviour.DROP)
    for address in faults.servfail:
        server.add(address, None, Behaviour.SERVFAIL)
    for i, address in enumerate(faults.hostile):
        server.add(address, _HOSTILE[i % len(_HOSTILE)])
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--addresses", type=int, default=5_500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--sample", type=int, default=550, help="lines for the sequential run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--runs", nargs="+", choices=["clean", "faulty", "memory"], default=["clean", "faulty"]
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the faulty run")
    parser.add_argument("--memory-lines", type=int, default=2_000_000)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--faulty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay, args.faulty)
    else:
        bench(args)


if __name__ == "__main__":
    main()
