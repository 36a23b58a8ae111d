"""The least any CPython merge of a farm does per line, timed: this runtime's ceiling.

pen.log goes into a dict of (server, request) -> clients; then the access logs are read in
turn, a batch each: find the stamp and the request with ``bytes.find``, look the stamp up in
a per-stamp cache, take the first client recorded for that request, put the line with it in
its second's bucket, and write the seconds that every log has passed. No pen.log window,
unescaping, long-request reduction, matching by time, clock correction or accounting, so no
real mergelogs does less per line, and its lines/s bounds ours from above.

    python bench/ceiling_mergelogs.py OUT PEN_LOG SERVER:ACCESS_LOG ...
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict, deque
from datetime import datetime

BATCH = 1 << 20
"""Bytes of lines read at a time from each log in turn."""
WINDOW = 60
"""Seconds a line may come late in its own log (Apache writes at the end of a request)."""


def load_pen(path: str) -> dict[tuple[bytes, bytes], deque[bytes]]:
    clients: dict[tuple[bytes, bytes], deque[bytes]] = defaultdict(deque)
    with open(path, "rb") as pen:
        for line in pen:
            client, _, server, request = line.rstrip(b"\n").split(b" ", 3)
            clients[server, request].append(client)
    return clients


def merge(out_path: str, pen_path: str, inputs: list[str]) -> int:
    """Write every access line, by second, with a client from pen.log; the number of lines."""
    clients = load_pen(pen_path)
    epochs: dict[bytes, int] = {}
    buckets: dict[int, list[bytes]] = defaultdict(list)
    logs = []
    for arg in inputs:
        server, _, path = arg.rpartition(":")
        logs.append((server.strip("[]").encode(), open(path, "rb")))  # noqa: SIM115
    lines = 0
    with open(out_path, "wb") as out:
        while logs:
            newest = []
            for key, log in list(logs):
                batch = log.readlines(BATCH)
                if not batch:
                    log.close()
                    logs.remove((key, log))
                    continue
                epoch = 0
                for line in batch:
                    start = line.find(b"[")
                    stamp = line[start + 1 : start + 27]
                    epoch = epochs.get(stamp, -1)
                    if epoch < 0:
                        epoch = epochs[stamp] = int(datetime.strptime(
                            stamp.decode(), "%d/%b/%Y:%H:%M:%S %z").timestamp())
                    quote = line.find(b'"', start)
                    request = line[quote + 1 : line.find(b'" ', quote)]
                    waiting = clients.get((key, request[:100]))
                    space = line.find(b" ")
                    client = waiting.popleft() if waiting else line[:space]
                    buckets[epoch].append(client + line[space:])
                newest.append(epoch)
                lines += len(batch)
            done = min(newest, default=2**63) - WINDOW
            for second in sorted(s for s in buckets if s < done):
                out.writelines(buckets.pop(second))
    return lines


def main() -> int:
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__ or "")
        return 2
    started = time.perf_counter()
    lines = merge(sys.argv[1], sys.argv[2], sys.argv[3:])
    seconds = time.perf_counter() - started
    print(f"ceiling: {lines:,} lines in {seconds:.2f} s, {lines / seconds:,.0f} lines/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
