"""Our mergelogs against Debian's C mergelogs (/usr/bin/mergelogs) as a differential peer."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest

from tests.mergelogs.conftest import BASE, clf, pen

C_MERGELOGS = "/usr/bin/mergelogs"
pytestmark = pytest.mark.skipif(
    not os.path.exists(C_MERGELOGS) and not os.environ.get("CI"),
    reason="Debian package pen not installed (CI installs it)",
)
_REQUEST = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def run(program: list[str], args: list[str]) -> bytes:
    done = subprocess.run([*program, *args], capture_output=True, timeout=60, check=True,
                          env={**os.environ, "TZ": "UTC"})
    return done.stdout


def clients(output: bytes) -> list[tuple[bytes, bytes]]:
    """(request, client) of every output line, sorted."""
    return sorted((_REQUEST.search(line).group(1), line.split(b" ", 1)[0])
                  for line in output.splitlines())


def farm(write, lines: int, seed: int):
    """Two sorted backend logs of unique short requests and the pen.log that fed them."""
    rng = random.Random(seed)
    pens, logs = [], [[], []]
    for i in range(lines):
        t, backend = BASE + i // 3, rng.randrange(2)
        uri = b"GET /item/%d HTTP/1.1" % i
        pens.append(pen(f"192.0.2.{rng.randrange(1, 250)}", t, f"10.0.0.{backend + 1}", uri))
        logs[backend].append(clf("10.0.0.254", t, uri))
    return [write("pen.log", pens), write("a.log", logs[0]), write("b.log", logs[1])]


@pytest.mark.parametrize("seed", [1, 2])
def test_same_clients_as_c_where_c_is_right(write, seed):
    penlog, a, b = farm(write, 400, seed)
    args = ["-p", penlog, f"10.0.0.1:{a}", f"10.0.0.2:{b}"]
    ours = run([sys.executable, "-m", "mergelogs"], args)
    theirs = run([C_MERGELOGS], args)
    assert len(ours.splitlines()) == len(theirs.splitlines()) == 400
    assert clients(ours) == clients(theirs)


def test_where_c_is_wrong_we_keep_every_line_and_client(write):
    same = b"GET /same HTTP/1.1"
    long_uri = b"GET /" + b"q" * 120 + b" HTTP/1.1"
    log = [clf("10.0.0.254", BASE, same), clf("10.0.0.254", BASE, same),
           clf("10.0.0.254", BASE + 1, long_uri),
           clf("10.0.0.254", BASE + 2, b""),
           clf("10.0.0.254", BASE + 3, b"GET /" + b"x" * 1100 + b" HTTP/1.1")]
    pens = [pen("192.0.2.3", BASE, "10.0.0.1", same), pen("192.0.2.4", BASE, "10.0.0.1", same),
            pen("192.0.2.5", BASE + 1, "10.0.0.1", long_uri)]
    args = ["-p", write("pen.log", pens), f"10.0.0.1:{write('a.log', log)}"]
    ours = run([sys.executable, "-m", "mergelogs"], args).splitlines()
    theirs = run([C_MERGELOGS], args).splitlines()
    assert len(ours) == 5
    assert len(theirs) < 5  # C drops the empty request and the 1 KB+ line
    assert sorted(x.split(b" ")[0] for x in ours[:2]) == [b"192.0.2.3", b"192.0.2.4"]
    assert [x.split(b" ")[0] for x in theirs[:2]] == [b"192.0.2.3", b"192.0.2.3"]
    assert ours[2].startswith(b"192.0.2.5 ")
    assert theirs[2].startswith(b"10.0.0.1 ")  # C cannot match 100+ byte requests
