"""The engine against a real UDP DNS server on 127.0.0.1, under asyncio and uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import pytest

from webresolve.cache import Cache
from webresolve.engine import Engine, Settings
from webresolve.stats import Stats
from webresolve.testing import Behaviour, FakeDns, start
from webresolve.transport import Nameserver

from .conftest import Run

FAST = {"timeout": 0.3, "lifetime": 1.0}


async def lookup(
    setup: Callable[[FakeDns], None],
    fields: list[bytes],
    *,
    cache: Cache | None = None,
    hosts: dict[str, str] | None = None,
    **options: Any,
) -> tuple[list[bytes | None], Stats, FakeDns]:
    """Resolve ``fields`` through a fresh server set up by ``setup``."""
    server = FakeDns()
    setup(server)
    port = await start(server)
    settings = Settings((Nameserver("127.0.0.1", port),), **{**FAST, **options})
    stats = Stats()
    try:
        async with Engine(settings, stats, hosts, cache, clock=lambda: 1000.0) as engine:
            futures = [engine.future_for(field) for field in fields]
            names = [None if f is None else await f for f in futures]
    finally:
        server.close()
    return names, stats, server


def test_answers_and_nxdomain(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "one.example")
        s.add("2001:db8::1", "six.example")

    fields = [b"192.0.2.1", b"2001:db8::1", b"192.0.2.2", b"::ffff:192.0.2.1", b"name", b"-"]
    # a 10 s timeout: a loaded machine cannot turn an answer into a retry (a 4th query)
    names, stats, server = run(lookup(setup, fields, timeout=10.0, lifetime=20.0))
    assert names == [b"one.example", b"six.example", None, b"one.example", None, None]
    assert (stats.addresses, stats.resolved, stats.nxdomain, stats.queries) == (3, 2, 1, 3)
    assert sum(server.queries.values()) == 3


def test_address_in_flight_is_asked_once(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "slow.example", delay=0.2)

    # a timeout far above the delay: only a retry after a timeout could ask twice
    fields = [b"192.0.2.1"] * 500 + [b"::ffff:192.0.2.1"]
    names, stats, server = run(lookup(setup, fields, timeout=10.0, lifetime=20.0))
    assert set(names) == {b"slow.example"}
    assert server.queries["1.2.0.192.in-addr.arpa."] == 1 and stats.queries == 1


@pytest.mark.parametrize(
    ("behaviour", "counter", "asked"),
    [
        (Behaviour.SERVFAIL, "servfail", 3),
        (Behaviour.REFUSED, "servfail", 3),
        (Behaviour.GARBAGE, "servfail", 3),
        (Behaviour.TRUNCATE, "servfail", 3),
        (Behaviour.DROP, "timeout", 3),
        (Behaviour.NOANSWER, "no_answer", 1),
        (Behaviour.NXDOMAIN, "nxdomain", 1),
    ],
)
def test_failures_keep_the_address(
    run: Run, behaviour: Behaviour, counter: str, asked: int
) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", None, behaviour)

    names, stats, server = run(lookup(setup, [b"192.0.2.1"], timeout=0.2, lifetime=2.0))
    assert names == [None]
    assert getattr(stats, counter) == 1 and stats.addresses == 1 and stats.resolved == 0
    assert server.queries["1.2.0.192.in-addr.arpa."] == asked


def test_lifetime_bounds_a_silent_server(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", None, Behaviour.DROP)

    loop_time: list[float] = []

    async def timed() -> Any:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        result = await lookup(setup, [b"192.0.2.1"], timeout=0.2, lifetime=0.5, retries=10)
        loop_time.append(loop.time() - begin)
        return result

    names, stats, server = run(timed())
    assert names == [None] and stats.timeout == 1
    assert 0.45 < loop_time[0] < 1.5
    assert server.queries["1.2.0.192.in-addr.arpa."] == 3


def test_late_replies_are_strays_not_answers(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "late.example", delay=0.3)

    names, stats, _ = run(lookup(setup, [b"192.0.2.1"], timeout=0.2, lifetime=1.0))
    assert names == [None] and stats.timeout == 1 and stats.queries == 3
    assert stats.strays >= 2


def test_retry_goes_to_the_next_server(run: Run) -> None:
    """The first server is silent: the second attempt goes to the second server and wins."""

    async def go() -> tuple[bytes | None, FakeDns, FakeDns]:
        silent, good = FakeDns(), FakeDns()
        silent.add("192.0.2.1", None, Behaviour.DROP)
        good.add("192.0.2.1", "second.example")
        ports = [await start(silent), await start(good)]
        servers = tuple(Nameserver("127.0.0.1", p) for p in ports)
        async with Engine(Settings(servers, timeout=0.2), Stats()) as engine:
            future = engine.future_for(b"192.0.2.1")
            assert future is not None
            name = await future
        silent.close()
        good.close()
        return name, silent, good

    name, silent, good = run(go())
    assert name == b"second.example"
    assert sum(silent.queries.values()) == 1 and sum(good.queries.values()) == 1


def test_truncated_reply_is_asked_again_over_tcp(run: Run) -> None:
    async def go() -> tuple[bytes | None, FakeDns, int]:
        server = FakeDns()
        server.add("192.0.2.1", "big.example", Behaviour.TRUNCATE)
        port = await start(server, tcp=True)
        stats = Stats()
        async with Engine(Settings((Nameserver("127.0.0.1", port),)), stats) as engine:
            future = engine.future_for(b"192.0.2.1")
            assert future is not None
            name = await future
        server.close()
        return name, server, stats.queries

    name, server, queries = run(go())
    assert name == b"big.example" and queries == 2
    assert server.queries == {"1.2.0.192.in-addr.arpa.": 1, "tcp 1.2.0.192.in-addr.arpa.": 1}


def test_ipv6_nameserver(run: Run) -> None:
    async def go() -> bytes | None:
        server = FakeDns()
        server.add("2001:db8::7", "v6.example")
        port = await start(server, host="::1")
        async with Engine(Settings((Nameserver("::1", port),)), Stats()) as engine:
            future = engine.future_for(b"2001:db8::7")
            assert future is not None
            name = await future
        server.close()
        return name

    assert run(go()) == b"v6.example"


def test_hostile_names_never_come_out(run: Run) -> None:
    hostile = {
        "192.0.2.1": dns.name.Name((b'evil" "x', b"com", b"")),
        "192.0.2.2": dns.name.Name((b"new\nline", b"com", b"")),
        "192.0.2.3": dns.name.from_text("192.0.2.200."),
        "192.0.2.5": dns.name.from_text("127.1."),
        "192.0.2.6": dns.name.from_text("10.0.0.01."),
        "192.0.2.7": dns.name.from_text("2130706433."),
        "192.0.2.8": dns.name.from_text("0x7f.1."),
        "192.0.2.9": dns.name.from_text("1.2.3.4.5."),
        "192.0.2.10": dns.name.from_text("0x7f.0x0.0x0.0x1."),
        "192.0.2.4": dns.name.Name((b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61, b"")),
    }

    def setup(s: FakeDns) -> None:
        for address, name in hostile.items():
            s.add(address, name)

    names, stats, _ = run(lookup(setup, [a.encode() for a in hostile]))
    assert names == [None] * 9 + [b".".join([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61])]
    assert stats.bogus == 9


POSING = ["127.1", "10.0.0.01", "2130706433", "0x7f.1", "1.2.3.4.5", "evil host\n\x1b[31m"]


def test_cache_and_hosts_names_pass_the_same_rule(run: Run, tmp_path: Path) -> None:
    """A poisoned cache row or a hosts line is judged as a PTR is: refused, counted bogus,
    and (being already stored) not written back."""
    cache = Cache(str(tmp_path / "c.db"))
    for i, name in enumerate(POSING):
        cache.put(f"192.0.2.{i}", name, 100, 990.0)
    cache.put("192.0.2.99", "fine.example", 100, 990.0)
    hosts = {f"198.51.100.{i}": name for i, name in enumerate(POSING)}
    hosts["198.51.100.99"] = "ok.example."
    fields = [a.encode() for a in (*hosts, *(f"192.0.2.{i}" for i in range(len(POSING))))]
    fields.append(b"192.0.2.99")
    names, stats, server = run(lookup(lambda s: None, fields, cache=cache, hosts=hosts))
    cache.close()
    assert names == [None] * len(POSING) + [b"ok.example"] + [None] * len(POSING) + [
        b"fine.example"
    ]
    assert stats.bogus == 2 * len(POSING) and stats.resolved == 2
    assert (stats.hosts_hits, stats.cache_hits, stats.queries) == (len(hosts), len(POSING) + 1, 0)


def test_verify(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "good.example")
        s.add("192.0.2.2", "liar.example", forward=False)
        s.add("2001:db8::2", "six.example")
        s.forward[dns.name.from_text("liar.example")] = ["192.0.2.99"]

    fields = [b"192.0.2.1", b"192.0.2.2", b"2001:db8::2"]
    names, stats, server = run(lookup(setup, fields, verify=True))
    assert names == [b"good.example", None, b"six.example"]
    assert stats.unverified == 1 and stats.resolved == 2
    assert server.queries["six.example."] == 1


def test_hosts_first_then_cache(run: Run, tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "c.db"))
    cache.put("192.0.2.2", "cached.example", 100, 990.0)
    cache.put("192.0.2.3", None, 100, 990.0)

    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "dns.example")
        s.add("192.0.2.4", "fresh.example", ttl=5)

    fields = [b"192.0.2.1", b"192.0.2.2", b"192.0.2.3", b"192.0.2.4"]
    names, stats, server = run(
        lookup(setup, fields, cache=cache, hosts={"192.0.2.1": "hosts.example"}, min_ttl=60)
    )
    assert names == [b"hosts.example", b"cached.example", None, b"fresh.example"]
    assert (stats.hosts_hits, stats.cache_hits, stats.queries) == (1, 2, 1)
    assert "192.0.2.4" in cache.load(1059.0) and "192.0.2.4" not in cache.load(1060.0)
    cache.close()


def test_cache_keeps_ttls_within_bounds_and_skips_failures(run: Run, tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "c.db"))

    def setup(s: FakeDns) -> None:
        s.add("192.0.2.1", "long.example", ttl=10**6)
        s.add("192.0.2.3", None, Behaviour.SERVFAIL)
        s.add("192.0.2.4", None, Behaviour.DROP)

    fields = [b"192.0.2.1", b"192.0.2.2", b"192.0.2.3", b"192.0.2.4"]
    run(lookup(setup, fields, cache=cache, max_ttl=500, negative_ttl=30, timeout=0.1))
    assert cache.load(1029.0) == {"192.0.2.1": "long.example", "192.0.2.2": None}
    assert cache.load(1030.0) == {"192.0.2.1": "long.example"}
    assert cache.load(1500.0) == {}
    cache.close()


def test_rate_ceiling(run: Run) -> None:
    def setup(s: FakeDns) -> None:
        for i in range(10):
            s.add(f"192.0.2.{i}", f"h{i}.example")

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        await lookup(setup, [f"192.0.2.{i}".encode() for i in range(10)], rate=50)
        return loop.time() - begin

    assert run(timed()) >= 9 / 50 - 0.01


def test_no_nameservers_fails_cleanly(run: Run) -> None:
    async def go() -> tuple[bytes | None, Stats]:
        stats = Stats()
        async with Engine(Settings(()), stats) as engine:
            future = engine.future_for(b"192.0.2.1")
            assert future is not None
            return await future, stats

    name, stats = run(go())
    assert name is None and stats.servfail == 1


def test_same_answers_as_dnspythons_resolver(run: Run) -> None:
    """Differential: dnspython's own Resolver(configure=False), pointed at the same server,
    finds the same names and the same kinds of "no name"."""
    cases = {
        "192.0.2.1": ("one.example", Behaviour.ANSWER),
        "2001:db8::5": ("six.example", Behaviour.ANSWER),
        "192.0.2.2": (None, Behaviour.NXDOMAIN),
        "192.0.2.3": (None, Behaviour.NOANSWER),
        "192.0.2.4": (None, Behaviour.SERVFAIL),
    }

    async def go() -> tuple[list[bytes | None], list[str]]:
        server = FakeDns()
        for address, (name, behaviour) in cases.items():
            server.add(address, name, behaviour)
        port = await start(server)
        theirs = dns.asyncresolver.Resolver(configure=False)
        theirs.nameservers = ["127.0.0.1"]
        theirs.port = port
        theirs.lifetime = 1.0
        verdicts = []
        for address in cases:
            try:
                answer = await theirs.resolve_address(address)
                verdicts.append(answer[0].target.to_text(omit_final_dot=True))
            except dns.exception.DNSException as exc:
                verdicts.append(type(exc).__name__)
        settings = Settings((Nameserver("127.0.0.1", port),), timeout=0.3, lifetime=1.0)
        async with Engine(settings, Stats()) as engine:
            ours = [await engine.future_for(a.encode()) for a in cases]
        server.close()
        return ours, verdicts

    ours, theirs = run(go())
    assert theirs == ["one.example", "six.example", "NXDOMAIN", "NoAnswer", "NoNameservers"]
    assert ours == [b"one.example", b"six.example", None, None, None]


def test_only_address_fields_are_remembered(run: Run) -> None:
    """Names and garbage in the address field cost no memory per distinct value."""

    async def go() -> tuple[int, int]:
        engine = Engine(Settings(()), Stats(), hosts={"192.0.2.1": "one.example"})
        async with engine:
            fields = [b"host%d.example" % n for n in range(500)] + [b"-", b"cafe", b"::g"]
            assert all(engine.future_for(f) is None for f in fields)
            spellings = [b"192.0.2.1", b"::ffff:192.0.2.1", b"::FFFF:c000:0201"]
            assert len({id(engine.future_for(f)) for f in spellings}) == 1
            return len(engine._by_field), engine.stats.addresses

    assert run(go()) == (3, 1)
