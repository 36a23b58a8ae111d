"""Resolver benchmark: ours vs jdresolve vs a sequential baseline, on loopback DNS servers.

Generates a 50,000-line log over 5,500 IPv4 addresses (about 90 % of them with a PTR),
then, for each DNS server (our asyncio server answering after --delay, and dnsmasq at
zero delay), runs every contender once and prints wall time, queries the server saw and
answers lost (addresses that have a name but kept their address). Finally re-runs ours
with a warm --cache. Run from the repository root:

    .venv/bin/python bench/bench_resolve.py [--delay 0.02] [--lines 50000] [--addresses 5500]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.reversename
import uvloop

from webresolve.testing import free_port

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


class OurServer:
    """Our asyncio DNS server in a child process (``--serve``), counting queries."""

    def __init__(self, hosts: Path, delay: float) -> None:
        self.label = f"our server, {delay * 1000:.0f} ms"
        self.cmd = [sys.executable, __file__, "--serve", str(hosts), "--delay", str(delay)]

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


def serve(hosts: Path, delay: float) -> None:
    """Child process: :class:`BenchServer` on 127.0.0.1 port 0; prints the port, then on
    each SIGUSR1 the number of queries so far; exits on SIGTERM."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = BenchServer(answer_records(hosts), delay)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: server, local_addr=("127.0.0.1", 0)
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(server.queries, flush=True))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(transport.get_extra_info("sockname")[1], flush=True)
        await stop.wait()
        transport.close()

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--addresses", type=int, default=5_500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--sample", type=int, default=550, help="lines for the sequential run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
    else:
        bench(args)


if __name__ == "__main__":
    main()
