"""Order, completeness and the bounded window of the line pipeline, on real UDP DNS."""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.reversename
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webresolve.engine import Engine, Settings
from webresolve.rewrite import locate
from webresolve.stats import Stats
from webresolve.stream import resolve_lines
from webresolve.testing import Behaviour, FakeDns, start
from webresolve.transport import Nameserver

from .conftest import Run, log_line


async def pipeline(
    setup: Callable[[FakeDns], None],
    lines: Iterator[bytes] | list[bytes],
    *,
    field: int = 1,
    window: int = 10000,
    budget: int = 32 << 20,
    **options: object,
) -> tuple[list[bytes], Stats, FakeDns]:
    server = FakeDns(seed=7)
    setup(server)
    port = await start(server)
    stats = Stats()
    out: list[bytes] = []
    progress: list[int] = []
    settings = Settings((Nameserver("127.0.0.1", port),), **options)  # type: ignore[arg-type]
    async with Engine(settings, stats) as engine:
        await resolve_lines(
            lines, out.append, engine, field, window, budget=budget, on_progress=progress.append
        )
    server.close()
    assert sum(progress) == len(out)
    return out, stats, server


@pytest.mark.timeout(120)
def test_order_and_completeness_100k_lines_random_delays(run: Run) -> None:
    rng = random.Random(3)
    addresses = [f"10.{i // 250}.{i % 250}.{rng.randrange(1, 255)}" for i in range(2000)]
    addresses = list(dict.fromkeys(addresses))
    named = {a: f"h{i}.example.net" for i, a in enumerate(addresses) if i % 5}
    dropped = set(addresses[::97])

    def setup(s: FakeDns) -> None:
        s.jitter = 0.02
        for address in addresses:
            if address in dropped:
                s.add(address, None, Behaviour.DROP)
            elif address in named:
                s.add(address, named[address])

    lines = [log_line(rng.choice(addresses), f"/{n}") for n in range(100_000)]
    lines[500] = b"not-an-ip - - [x]\n"
    # timeouts far above the jitter, so only the dropped addresses are asked again
    out, stats, server = run(pipeline(setup, lines, timeout=2.0, lifetime=5.0, window=5000))
    assert len(out) == len(lines)
    for before, after in zip(lines, out, strict=True):
        client = before.split(b" ", 1)[0].decode()
        expected = named.get(client) if client not in dropped else None
        if expected is None:
            assert after == before
        else:
            assert after == expected.encode() + before[len(client) :]
    assert stats.addresses == len(set(addresses) & {ln.split(b" ")[0].decode() for ln in lines})
    silent = {dns.reversename.from_address(a).to_text() for a in dropped}
    assert all(n == 1 for q, n in server.queries.items() if q not in silent)
    assert all(server.queries[q] > 1 for q in silent if q in server.queries)
    assert stats.lines == 100_000 and stats.with_name == 1


@pytest.mark.timeout(120)
def test_black_holes_do_not_hold_lookups_back(run: Run) -> None:
    """Four addresses that never answer, early in a log longer than anything held back
    before: every later address is asked before the first black hole's lifetime is over
    (on the server's clock), so the waits overlap instead of following one another."""
    holes = [f"198.51.100.{i}" for i in range(4)]
    named = {f"10.0.{i // 200}.{i % 200 + 1}": f"h{i}.example.net" for i in range(400)}
    addresses = list(named)  # address k first seen at line 29 k, then again at random
    lines = [log_line(addresses[n // 29 % 400], f"/{n}") for n in range(12_000)]
    for n, hole in enumerate(holes):
        lines[n * 2500] = log_line(hole, "/hole")
    lifetime = 3.0  # retries enough that the lifetime, not the attempts, ends a black hole

    def setup(s: FakeDns) -> None:
        for address, name in named.items():
            s.add(address, name)
        for hole in holes:
            s.add(hole, None, Behaviour.DROP)

    out, stats, server = run(pipeline(setup, lines, timeout=1.0, lifetime=lifetime, retries=9))
    first: dict[str, float] = {}
    for at, name in server.log:
        first.setdefault(name, at)
    hole_began = first[dns.reversename.from_address(holes[0]).to_text()]
    asked = [first[dns.reversename.from_address(a).to_text()] for a in named]
    assert max(asked) < hole_began + lifetime
    assert [line.split(b" ", 1)[0] for line in out] == [
        named.get(a, a).encode() for a in (ln.split(b" ", 1)[0].decode() for ln in lines)
    ]
    assert all(server.queries[dns.reversename.from_address(a).to_text()] == 1 for a in named)
    assert stats.timeout == 4 and stats.resolved == 400


def test_unanswered_addresses_are_bounded(run: Run) -> None:
    """Reading pauses while ``window`` distinct addresses wait for an answer."""
    holes = [f"198.51.100.{i}" for i in range(30)]
    seen: list[int] = []

    async def go() -> list[bytes]:
        server = FakeDns()
        for hole in holes:
            server.add(hole, None, Behaviour.DROP)
        port = await start(server)
        out: list[bytes] = []
        settings = Settings((Nameserver("127.0.0.1", port),), timeout=0.2, lifetime=0.2)
        async with Engine(settings, Stats()) as engine:

            def lines() -> Iterator[bytes]:
                for n in range(300):
                    seen.append(engine.unanswered)
                    yield log_line(holes[n % 30] if n < 60 else "-", f"/{n}")

            await resolve_lines(lines(), out.append, engine, window=5)
        server.close()
        return out

    out = run(go())
    assert len(out) == 300 and max(seen) == 4  # the 5th unanswered one pauses reading
    assert out == [log_line(holes[n % 30] if n < 60 else "-", f"/{n}") for n in range(300)]


@pytest.mark.timeout(120)
def test_spill_keeps_order_and_loses_nothing(run: Run, tmp_path: Path) -> None:
    """A black hole first and a memory budget of a few lines: the lines read during its
    lifetime wait in the temporary file, in $TMPDIR (deleted), and come back in order,
    byte for byte."""
    named = {f"10.1.0.{i}": f"n{i}.example" for i in range(1, 201)}
    rng = random.Random(5)
    lines = [log_line("198.51.100.1", "/hole")]
    for n in range(20_000):
        pick = rng.random()
        if pick < 0.05:
            lines.append(
                b"-" + bytes(rng.randrange(256) for _ in range(40)).replace(b"\n", b"") + b"\n"
            )
        else:
            lines.append(log_line(rng.choice(list(named)), f"/{n}" + "x" * rng.randrange(3000)))
    lines.append(b"10.1.0.7 last line without a newline")

    def setup(s: FakeDns) -> None:
        for address, name in named.items():
            s.add(address, name)
        s.add("198.51.100.1", None, Behaviour.DROP)

    tempfile.tempdir = str(tmp_path)
    try:
        out, stats, _ = run(pipeline(setup, lines, budget=4096, timeout=2.0, lifetime=2.0))
    finally:
        tempfile.tempdir = None
    expected = []
    for line in lines:
        head, sep, rest = line.partition(b" ")
        name = named.get(head.decode("ascii", "replace"))
        # read_lines ends every whole line with a newline: one without is a piece of a line
        # too long to hold, passed on untouched
        whole = line.endswith(b"\n")
        resolved = name is not None and sep and whole
        expected.append(name.encode() + sep + rest if resolved else line)
    assert out == expected
    assert stats.spilled > 1000 and stats.lines == len(lines)
    assert list(tmp_path.iterdir()) == []


def test_second_field_and_untouched_lines(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "one.example")

    lines = [
        b'www.example.com:80 192.0.2.1 - - [x] "GET /" 200 1\n',
        b"www.example.com:80 - - - [x]\n",
        b"only-one-field\n",
        b"\n",
        b"\xff\xfe binary \x00 junk\r\n",
    ]
    out, stats, _ = run(pipeline(setup, lines, field=2))
    assert out[0] == b'www.example.com:80 one.example - - [x] "GET /" 200 1\n'
    assert out[1:] == lines[1:]
    assert stats.with_name == 4


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.sampled_from([b"192.0.2.1", b"192.0.2.2", b"::ffff:192.0.2.1", b"-", b""]),
        ).map(lambda head: head + b" rest of line"),
        max_size=30,
    ),
    st.integers(1, 3),
)
def test_only_the_field_of_a_known_address_changes(heads: list[bytes], field: int) -> None:
    """With no DNS at all, lines change only where --hosts names the field's address."""
    lines = [h.replace(b"\n", b"") + b"\n" for h in heads]

    async def go() -> list[bytes]:
        out: list[bytes] = []
        engine = Engine(Settings((), concurrency=2), Stats(), hosts={"192.0.2.1": "known.example"})
        async with engine:
            await resolve_lines(lines, out.append, engine, field, window=4)
        return out

    out = asyncio.run(go())
    assert len(out) == len(lines)
    for before, after in zip(lines, out, strict=True):
        start, end = locate(before, field) or (0, 0)
        if before[start:end] in (b"192.0.2.1", b"::ffff:192.0.2.1"):
            assert after == before[:start] + b"known.example" + before[end:]
        else:
            assert after == before
