"""Balancer benchmark: wrk through our pen, Debian's pen and HAProxy to two nginx backends.

Also runs bare_proxy.py, the least a uvloop proxy does, as this runtime's ceiling.
Runs keep-alive and one-connection-per-request modes, interleaving the proxies and
repeating each run; prints requests/s, p99 latency and the proxy's CPU time per request
(from /proc, the steadiest figure on a shared machine) per proxy, each the median of the
repeats, and our ratio to C pen. Loopback only; every process started here is stopped by pid.

    .venv/bin/python bench/bench_pen.py [--duration 3] [--repeat 3] [--connections 50]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx.err;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{ listen 127.0.0.1:{p1}; location / {{ return 200 "backend one\\n"; }} }}
    server {{ listen 127.0.0.1:{p2}; location / {{ return 200 "backend two\\n"; }} }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 3s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"""


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this run handed out before (two proxies, or a proxy
    and a backend, must not be given the same number)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_port(port: int, name: str = "", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name or 'nothing'} does not listen on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its pid."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, duration: int, connections: int, close: bool) -> tuple[float, float, int]:
    """Requests/s, p99 latency (ms) and request count of one wrk run."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           f"http://127.0.0.1:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, p99, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="benchpen"))
    p1, p2 = free_port(), free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, p1=p1, p2=p2))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
                                      stderr=subprocess.DEVNULL))
        wait_port(p1)
        ports = {name: free_port() for name in ("ours", "C pen", "haproxy", "bare")}
        backends = [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"]
        (work / "haproxy.cfg").write_text(HAPROXY_CONF.format(port=ports["haproxy"], p1=p1, p2=p2))
        commands = {
            "ours": [sys.executable, "-m", "pen", "-f", "-r", "-x", "4096",
                     str(ports["ours"]), *backends],
            "C pen": ["/usr/bin/pen", "-f", "-r", "-x", "4096", str(ports["C pen"]), *backends],
            "haproxy": ["haproxy", "-db", "-f", str(work / "haproxy.cfg")],
            "bare": [sys.executable, str(Path(__file__).with_name("bare_proxy.py")),
                     str(ports["bare"]), *backends],
        }
        pids = {}
        for name, cmd in commands.items():
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            pids[name] = procs[-1].pid
            wait_port(ports[name], name)
        for mode, close in (("keep-alive", False), ("conn/request", True)):
            results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in commands}
            for _ in range(args.repeat):
                for name in commands:
                    before = cpu_seconds(pids[name])
                    rps, p99, count = wrk(ports[name], args.duration, args.connections, close)
                    cpu_us = (cpu_seconds(pids[name]) - before) * 1e6 / max(count, 1)
                    results[name].append((rps, p99, cpu_us))
            print(f"{mode}: {args.connections} connections, {args.duration}s x {args.repeat}")
            summary = {}
            for name, runs in results.items():
                rps, p99, cpu_us = (statistics.median(r[i] for r in runs) for i in range(3))
                summary[name] = (rps, p99, cpu_us)
                print(f"  {name:8} {rps:10.0f} req/s   p99 {p99:8.2f} ms   "
                      f"proxy CPU {cpu_us:6.1f} us/req")
            ours, c_pen = summary["ours"], summary["C pen"]
            ratios = [ours[i] / c_pen[i] for i in range(3)]
            print("  ours / C pen: {:.2f}x req/s, p99 {:.2f}x, CPU/req {:.2f}x".format(*ratios))
    finally:
        for proc in reversed(procs):
            stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
