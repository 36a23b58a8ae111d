"""Order, completeness and the bounded window of the line pipeline, on real UDP DNS."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator

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
        await resolve_lines(lines, out.append, engine, field, window, progress.append)
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
    out, stats, server = run(pipeline(setup, lines, timeout=0.5, lifetime=1.0, window=5000))
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


def test_window_bounds_what_is_read_ahead(run: Run) -> None:
    consumed = 0
    first_write_at: list[int] = []

    def lines() -> Iterator[bytes]:
        nonlocal consumed
        for n in range(1000):
            consumed += 1
            yield log_line("192.0.2.1" if n == 0 else "-", f"/{n}")

    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "slow.example", delay=0.3)

    async def go() -> list[bytes]:
        server = FakeDns()
        setup(server)
        port = await start(server)
        out: list[bytes] = []

        def write(line: bytes) -> None:
            if not out:
                first_write_at.append(consumed)
            out.append(line)

        settings = Settings((Nameserver("127.0.0.1", port),))
        async with Engine(settings, Stats()) as engine:
            await resolve_lines(lines(), write, engine, window=50)
        server.close()
        return out

    out = run(go())
    assert len(out) == 1000 and out[0].startswith(b"slow.example ")
    assert first_write_at == [51]


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
