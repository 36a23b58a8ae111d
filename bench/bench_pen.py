"""Balancer benchmark: wrk through our pen, Debian's pen and HAProxy to two nginx backends.

Also runs bare_proxy.py, the least a uvloop proxy does, as this runtime's ceiling.
Runs keep-alive and one-connection-per-request modes, interleaving the proxies and
repeating each run; prints requests/s, p99 latency and the proxy's CPU time per request
(from /proc, the steadiest figure on a shared machine) per proxy, each the median of the
repeats, and our ratios to C pen and to the bare proxy. Then, ours beside C pen: resident
memory per idle connection (``--idle N`` held at once), TLS termination with -E (wrk over
https, both modes; bare_proxy.py --tls as the ceiling) and UDP request/response datagrams
per second (-U, a lock-step client over ``--flows`` sockets; bare_udp.py as the ceiling).
Loopback only; every process started here is stopped by pid.

    .venv/bin/python bench/bench_pen.py [--duration 3] [--repeat 3] [--connections 50]
        [--idle 5000] [--flows 32] [--only tcp,memory,tls,udp] [--proxies ours,bare]
        [--baseline /tmp/main/src]
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
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
worker_rlimit_nofile 40000;
events {{ worker_connections 16384; }}
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
        with socket.socket(socket.AF_INET6) as sock:  # free on every address: pen binds all
            sock.bind(("::", 0))
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


def wrk(port: int, duration: int, connections: int, close: bool,
        scheme: str = "http") -> tuple[float, float, int]:
    """Requests/s, p99 latency (ms) and request count of one wrk run."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           f"{scheme}://127.0.0.1:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, p99, count


def rss_bytes(pid: int) -> int:
    """Resident set size of a process from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def idle_memory(pid: int, port: int, count: int) -> tuple[float, int]:
    """Resident bytes per idle connection (``count`` clients connected, silent), and in all.

    C pen allocates its -x table at startup, so its growth is near 0: its total counts.
    """
    time.sleep(0.3)
    before, fds = rss_bytes(pid), open_fds(pid)
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.connect(("127.0.0.1", port))
            socks.append(sock)
        deadline = time.monotonic() + 30
        while open_fds(pid) < fds + 2 * count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        return (rss_bytes(pid) - before) / count, rss_bytes(pid)
    finally:
        for sock in socks:
            sock.close()


UDP_ECHO = """
import asyncio, socket, sys, uvloop
class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport): self.transport = transport
    def datagram_received(self, data, addr): self.transport.sendto(data, addr)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", int(sys.argv[1])))
    await asyncio.Event().wait()
uvloop.run(main())
"""


def udp_rate(port: int, duration: float, flows: int) -> tuple[float, int, int]:
    """Answered datagrams per second over ``flows`` lock-step sockets, datagrams lost
    (a reply missing for 0.5 s: the flow sends its next one) and datagrams answered."""
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(flows):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    answered = lost = 0
    sent_at = {}
    try:
        start = time.monotonic()
        for sock in socks:
            sock.send(b"q")
            sent_at[sock] = start
        while (now := time.monotonic()) - start < duration:
            for key, _ in selector.select(0.1):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    while sock.recv(2048):
                        answered += 1
                except BlockingIOError:
                    pass
                sock.send(b"q")
                sent_at[sock] = now
            for sock, when in sent_at.items():
                if now - when > 0.5:
                    lost += 1
                    sock.send(b"q")
                    sent_at[sock] = now
        return answered / (time.monotonic() - start), lost, answered
    finally:
        for sock in socks:
            selector.unregister(sock)
            sock.close()


def start(procs: list[subprocess.Popen[bytes]], cmd: list[str], port: int, name: str,
          udp: bool = False, env: dict[str, str] | None = None) -> int:
    """Start a proxy (or backend) we stop later; its pid once it listens."""
    errors = tempfile.TemporaryFile()  # not a pipe: a chatty proxy must never block on it
    procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env))
    if udp:
        time.sleep(1.0)
    else:
        try:
            wait_port(port, name, 30.0)
        except RuntimeError:
            stop(procs[-1])
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace"))
            raise
    return procs[-1].pid


def tcp_rounds(commands: dict[str, list[str]], ports: dict[str, int], pids: dict[str, int],
               args: argparse.Namespace, scheme: str = "http") -> None:
    """Both modes, the proxies interleaved and repeated; medians and ratios printed."""
    for mode, close in (("keep-alive", False), ("conn/request", True)):
        results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in commands}
        for _ in range(args.repeat):
            for name in commands:
                before = cpu_seconds(pids[name])
                rps, p99, count = wrk(ports[name], args.duration, args.connections, close, scheme)
                cpu_us = (cpu_seconds(pids[name]) - before) * 1e6 / max(count, 1)
                results[name].append((rps, p99, cpu_us))
        print(f"{scheme} {mode}: {args.connections} connections, {args.duration}s x {args.repeat}")
        summary = {}
        for name, runs in results.items():
            rps, p99, cpu_us = (statistics.median(r[i] for r in runs) for i in range(3))
            summary[name] = (rps, p99, cpu_us)
            print(f"  {name:8} {rps:10.0f} req/s   p99 {p99:8.2f} ms   "
                  f"proxy CPU {cpu_us:6.1f} us/req")
        for peer in ("C pen", "bare", "bare-hc", "baseline"):
            if peer in summary:
                ratios = [summary["ours"][i] / summary[peer][i] for i in range(3)]
                print(f"  ours / {peer}: " +
                      "{:.2f}x req/s, p99 {:.2f}x, CPU/req {:.2f}x".format(*ratios))
        for peer in ("bare", "bare-hc", "baseline"):
            if peer in results:
                pairs = [a[0] / b[0] for a, b in zip(results["ours"], results[peer], strict=True)]
                print(f"  ours / {peer} per round: " + " ".join(f"{r:.2f}" for r in pairs))


def main() -> int:  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--flows", type=int, default=32)
    parser.add_argument("--only", default="tcp,memory,tls,udp")
    parser.add_argument("--proxies", default="ours,C pen,haproxy,bare,bare-hc",
                        help="which proxies the tcp part runs")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also run the pen of another source tree (its src/ directory) "
                             "as 'baseline', e.g. main's, to compare a change")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="benchpen"))
    p1, p2 = free_port(), free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, p1=p1, p2=p2))
    procs: list[subprocess.Popen[bytes]] = []
    backends = [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"]
    ours = [sys.executable, "-m", "pen", "-f", "-r"]
    cpen = ["/usr/bin/pen", "-f", "-r"]
    bare = [sys.executable, str(Path(__file__).with_name("bare_proxy.py"))]
    try:
        procs.append(subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
                                      stderr=subprocess.DEVNULL))
        wait_port(p1)
        if "tcp" in parts:
            names = ("ours", "C pen", "haproxy", "bare", "bare-hc", "baseline")
            ports = {name: free_port() for name in names}
            (work / "haproxy.cfg").write_text(HAPROXY_CONF.format(port=ports["haproxy"],
                                                                  p1=p1, p2=p2))
            commands = {
                "ours": [*ours, "-x", "4096", str(ports["ours"]), *backends],
                "C pen": [*cpen, "-x", "4096", str(ports["C pen"]), *backends],
                "haproxy": ["haproxy", "-db", "-f", str(work / "haproxy.cfg")],
                "bare": [*bare, str(ports["bare"]), *backends],
                "bare-hc": [*bare, "--half-close", str(ports["bare-hc"]), *backends],
            }
            chosen = args.proxies.split(",")
            commands = {name: cmd for name, cmd in commands.items() if name in chosen}
            pids = {name: start(procs, cmd, ports[name], name) for name, cmd in commands.items()}
            if args.baseline:
                commands["baseline"] = [*ours, "-x", "4096", str(ports["baseline"]), *backends]
                env = {**os.environ, "PYTHONPATH": args.baseline}
                pids["baseline"] = start(procs, commands["baseline"], ports["baseline"],
                                         "baseline", env=env)
            tcp_rounds(commands, ports, pids, args)
        if "tls" in parts:
            pem = work / "cert.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(pem), "-out", str(pem), "-days", "2",
                            "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
            ports = {"ours": free_port(), "C pen": free_port(), "bare": free_port()}
            commands = {
                "ours": [*ours, "-x", "4096", "-E", str(pem), str(ports["ours"]), *backends],
                "C pen": [*cpen, "-x", "4096", "-E", str(pem), str(ports["C pen"]), *backends],
                "bare": [*bare, "--tls", str(pem), str(ports["bare"]), *backends],
            }
            pids = {name: start(procs, cmd, ports[name], name) for name, cmd in commands.items()}
            tcp_rounds(commands, ports, pids, args, "https")
        if "udp" in parts:
            echo = [free_port(), free_port()]
            for port in echo:
                start(procs, [sys.executable, "-c", UDP_ECHO, str(port)], port, "echo", True)
            udp_backends = [f"127.0.0.1:{port}" for port in echo]
            ports = {"ours": free_port(), "C pen": free_port(), "bare": free_port()}
            bare_udp = [sys.executable, str(Path(__file__).with_name("bare_udp.py"))]
            pids = {name: start(procs, [*base, str(ports[name]), *udp_backends], ports[name],
                                name, True)
                    for name, base in (("ours", [*ours, "-U"]), ("C pen", [*cpen, "-U"]),
                                       ("bare", bare_udp))}
            rates: dict[str, list[tuple[float, int, float]]] = {name: [] for name in pids}
            for _ in range(args.repeat):
                for name in rates:
                    before = cpu_seconds(pids[name])
                    rate, lost, count = udp_rate(ports[name], args.duration, args.flows)
                    cpu_us = (cpu_seconds(pids[name]) - before) * 1e6 / max(count, 1)
                    rates[name].append((rate, lost, cpu_us))
            medians = {name: (statistics.median(r[0] for r in runs),
                              statistics.median(r[2] for r in runs))
                       for name, runs in rates.items()}
            for name, runs in rates.items():
                print(f"udp: {name:6} {medians[name][0]:9.0f} datagrams/s "
                      f"answered, {sum(r[1] for r in runs)} lost ({args.flows} flows), "
                      f"proxy CPU {medians[name][1]:5.1f} us per answered datagram")
            for peer in ("C pen", "bare"):
                print(f"udp: ours / {peer} {medians['ours'][0] / medians[peer][0]:.2f}x, "
                      f"CPU/datagram {medians['ours'][1] / medians[peer][1]:.2f}x")
            pairs = [a[0] / b[0] for a, b in zip(rates["ours"], rates["bare"], strict=True)]
            print("udp: ours / bare per round: " + " ".join(f"{r:.2f}" for r in pairs))
        if "memory" in parts:  # last: its thousands of closed pairs linger on ports
            limit = str(args.idle + 100)
            for name, base in (("ours", [*ours, "-x", limit, "-c", limit]),
                               ("C pen", [*cpen, "-x", limit, "-c", limit]), ("bare", bare)):
                for attempt in range(3):  # thousands of closed pairs may still hold a port
                    port = free_port()
                    try:
                        pid = start(procs, [*base, str(port), *backends], port, name)
                        break
                    except RuntimeError:
                        stop(procs.pop())
                        if attempt == 2:
                            raise
                per, total = idle_memory(pid, port, args.idle)
                print(f"memory: {name:6} {per:8.0f} bytes per idle connection ({args.idle} held),"
                      f" {total / 1e6:.1f} MB resident in all")
                stop(procs.pop())
    finally:
        for proc in reversed(procs):
            stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
