"""The whole chain: clients through our pen, then mergelogs (ours and Debian's) over pen.log
and the backends' logs, then splitwr: every client address comes back, then its name."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .helpers import free_port, http_get

C_MERGELOGS = "/usr/bin/mergelogs"
CLIENTS = [f"127.0.0.{n}" for n in range(2, 8)]
_PATH = re.compile(rb'"GET (/\S+) HTTP/1\.0"')


def merged_clients(output: bytes) -> dict[bytes, bytes]:
    """Request path -> client field of each merged line."""
    found = {}
    for line in output.splitlines():
        found[_PATH.search(line).group(1)] = line.split(b" ", 1)[0]
    return found


@pytest.mark.timeout(120)
def test_clients_restored_through_pen_mergelogs_and_splitwr(backends, pen, tmp_path):
    web = [*backends("a", host="127.0.0.10"), *backends("b", host="127.0.0.11")]
    port = free_port()
    penlog = tmp_path / "pen.log"
    balancer = pen(["-r", "-l", penlog, f"127.0.0.1:{port}", *(b.spec for b in web)])
    sent = {}
    for round_ in range(5):
        for client in CLIENTS:
            path = f"/{client}/r{round_}"
            assert http_get(port, path, source=client) in (b"a", b"b")
            sent[path.encode()] = client.encode()
    assert balancer.stop() == 0
    for backend in web:
        backend.stop()

    args = ["-p", str(penlog)] + [f"{b.host}:{b.log_path}" for b in web]
    ours = subprocess.run([sys.executable, "-m", "mergelogs", *args], capture_output=True,
                          timeout=60, check=True).stdout
    theirs = subprocess.run([C_MERGELOGS, *args], capture_output=True, timeout=60, check=True,
                            env={**os.environ, "TZ": "UTC"}).stdout
    assert merged_clients(ours) == sent
    assert merged_clients(theirs) == sent
    assert sum(len(b.log_path.read_bytes().splitlines()) for b in web) == len(sent)

    hosts = tmp_path / "hosts"
    hosts.write_text("".join(f"{c} client{c.rsplit('.', 1)[1]}.example.org\n" for c in CLIENTS))
    resolved = subprocess.run(
        [sys.executable, "-m", "webresolve", "--hosts", str(hosts), "--nameserver",
         "127.0.0.1:9", "-"], input=ours, capture_output=True, timeout=60, check=True).stdout
    names = merged_clients(resolved)
    assert names == {path: b"client%s.example.org" % client.rsplit(b".", 1)[1]
                     for path, client in sent.items()}
