"""penlogd's pure merge in-process: netlog entries and web lines through LiveMerger.

No sockets and no peer (C penlogd cannot be fed without them): this measures our matcher's
ceiling per datagram, repeated, printing best and median.

    .venv/bin/python bench/bench_live.py [--requests 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from mergelogs.accesslog import format_stamp
from mergelogs.live import LiveMerger
from pen.penlog import format_netlog

BASE = 1795577386


def workload(requests: int) -> tuple[list[bytes], list[bytes]]:
    """One entry and one line per request, 5,000 distinct requests, 1,000 requests/s."""
    entries = [format_netlog(f"192.0.2.{i % 250 + 1}", "10.0.0.1",
                             b"GET /p/%d HTTP/1.1\r\n" % (i % 5000)) for i in range(requests)]
    lines = [b'10.0.0.254 - - [%s] "GET /p/%d HTTP/1.1" 200 512 "-" "agent/1.0"\n'
             % (format_stamp(BASE + i // 1000), i % 5000) for i in range(requests)]
    return entries, lines


def run(entries: list[bytes], lines: list[bytes]) -> tuple[float, int]:
    merger = LiveMerger()
    started = time.perf_counter()
    out = 0
    for i, (entry, line) in enumerate(zip(entries, lines, strict=True)):
        now = BASE + i / 1000
        out += len(merger.receive(entry, "10.0.0.1", now))
        out += len(merger.receive(line, "10.0.0.1", now + 0.01))
    out += len(merger.flush())
    assert out == len(lines)
    return time.perf_counter() - started, merger.stats.matched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    entries, lines = workload(args.requests)
    times = []
    for _ in range(args.repeat):
        seconds, matched = run(entries, lines)
        times.append(seconds)
        print(f"{2 * args.requests / seconds:9.0f} datagrams/s  matched {matched}")
    rate = 2 * args.requests
    print(f"best {rate / min(times):.0f}, median {rate / statistics.median(times):.0f} "
          "datagrams/s")


if __name__ == "__main__":
    main()
