"""User-space instructions per proxied connection, counted by callgrind: ours and the bare proxies.

Wall-clock rates on this shared 2-core machine swing by up to 2x between runs; an instruction
count does not (valgrind counts the same total for the same code and inputs whatever else runs).
Each proxy runs under ``valgrind --tool=callgrind`` twice, once for ``--warmup`` and once for
``--warmup + --requests`` ab requests with one connection each (HTTP/1.0, no keep-alive) to the
nginx backends of bench_pen.py; the difference of the two totals over ``--requests`` is the
cost of one connection, start-up and shutdown cancelled out. The kernel's share (the same
system calls for every proxy here) is not counted: bench_pen.py measures the whole.

    .venv/bin/python bench/bench_instructions.py [--requests 1000] [--warmup 300]
        [--proxies ours,bare,bare-hc] [--baseline /tmp/main/src]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_pen import NGINX_CONF, free_port, stop, wait_port


def count(cmd: list[str], port: int, requests: int, work: Path, name: str,
          env: dict[str, str] | None) -> int:
    """Instructions callgrind counted for ``cmd`` serving ``requests`` connections."""
    out = work / f"{name}.{requests}.callgrind"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    try:
        wait_port(port, name, 120.0)
        ab = subprocess.run(["ab", "-q", "-n", str(requests), "-c", "10",
                             f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
        if f"Complete requests:      {requests}" not in ab.stdout or \
                "Failed requests:        0" not in ab.stdout:
            raise RuntimeError(f"{name}: ab did not complete {requests} requests:\n{ab.stdout}")
    finally:
        stop(proc)
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"{name}: no callgrind totals in {out}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--proxies", default="ours,bare,bare-hc")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also count the pen of another source tree (its src/), e.g. main's")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="benchinstr"))
    p1, p2 = free_port(), free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, p1=p1, p2=p2))
    backends = [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"]
    bare = [sys.executable, str(Path(__file__).with_name("bare_proxy.py"))]
    pen = [sys.executable, "-m", "pen", "-f", "-r", "-x", "4096"]
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "ours": (pen, None), "bare": (bare, None), "bare-hc": ([*bare, "--half-close"], None),
    }
    chosen = {name: commands[name] for name in args.proxies.split(",")}
    if args.baseline:
        chosen["baseline"] = (pen, {**os.environ, "PYTHONPATH": args.baseline})
    nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
                             stderr=subprocess.DEVNULL)
    try:
        wait_port(p1, "nginx")
        per: dict[str, float] = {}
        for name, (cmd, env) in chosen.items():
            totals = []
            for requests in (args.warmup, args.warmup + args.requests):
                port = free_port()
                totals.append(count([*cmd, str(port), *backends], port, requests, work, name,
                                    env))
            per[name] = (totals[1] - totals[0]) / args.requests
            print(f"{name:9} {per[name]:9.0f} instructions per connection", flush=True)
    finally:
        stop(nginx)
    for peer in ("bare", "bare-hc", "baseline"):
        if "ours" in per and peer in per:
            print(f"ours / {peer}: {per['ours'] / per[peer]:.2f}x "
                  f"({per['ours'] - per[peer]:+.0f} instructions per connection)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
