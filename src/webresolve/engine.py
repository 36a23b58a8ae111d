"""The lookup engine: each distinct address asked once, by a fixed pool of workers.

Design notes
------------
``future_for(field)`` is the only entry point. A field seen before returns the same future
(the dict is keyed by the field's bytes, then by canonical address, so ``::ffff:192.0.2.1``
and ``192.0.2.1`` share one lookup), which is what makes an address in flight asked once.
A new address is answered at once from ``--hosts`` or the cache, or else queued for one of
``concurrency`` workers. A worker asks the nameservers through :class:`Transport`, follows
:class:`Attempts` for retries, optionally confirms the name forward, writes the cache and
completes the future with the name's bytes or None. No outcome raises: a lookup that fails
keeps the address and is counted. ``unanswered`` counts the addresses queued or asked and
not yet answered, so that the reader can bound them (:meth:`answered` waits for one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from webresolve.answers import Answer, Outcome, classify_ptr, confirms, named
from webresolve.cache import Cache
from webresolve.errors import LookupFailed, LookupTimeout
from webresolve.messages import Question, Reply
from webresolve.names import canonical_address, is_ipv6
from webresolve.plan import Attempts, RateLimiter, clamp_ttl
from webresolve.stats import Stats
from webresolve.transport import Nameserver, Transport

NameFuture = asyncio.Future[bytes | None]


@dataclass(frozen=True, slots=True)
class Settings:
    """How lookups are made; the command line's options, validated."""

    nameservers: tuple[Nameserver, ...]
    concurrency: int = 100
    timeout: float = 2.0
    lifetime: float = 5.0
    retries: int = 2
    rate: float = 0.0
    verify: bool = False
    min_ttl: float = 300.0
    max_ttl: float = 7 * 86400.0
    negative_ttl: float = 3600.0


class Engine:
    """Resolves addresses for one run. Use as ``async with Engine(...) as engine``."""

    def __init__(
        self,
        settings: Settings,
        stats: Stats,
        hosts: dict[str, str] | None = None,
        cache: Cache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self._hosts = hosts or {}
        self._cache = cache
        self._clock = clock
        self._cached = cache.load(clock()) if cache is not None else {}
        self._transport = Transport(list(settings.nameservers))
        self._rate = RateLimiter(settings.rate)
        self._by_field: dict[bytes, NameFuture] = {}
        self._by_address: dict[str, NameFuture] = {}
        self._queue: asyncio.Queue[tuple[str, NameFuture]] = asyncio.Queue()
        self._freed = asyncio.Event()
        self.unanswered = 0
        """Distinct addresses queued or being asked."""
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Engine:
        if self.settings.nameservers:
            await self._transport.open()
        self._workers = [
            asyncio.create_task(self._work()) for _ in range(self.settings.concurrency)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._transport.close()
        self.stats.queries = self._transport.sent
        self.stats.strays = self._transport.strays

    def future_for(self, field: bytes) -> NameFuture | None:
        """The future name of the address in ``field``; None when it is not an address.

        Only fields that are addresses are remembered (each spelling of one), so memory
        grows with the distinct addresses, not with the names or garbage a log holds.
        """
        future = self._by_field.get(field)
        if future is not None:
            return future
        address = canonical_address(field)
        if address is None:
            return None
        future = self._by_address.get(address)
        if future is None:
            future = self._by_address[address] = self._start(address)
        self._by_field[field] = future
        return future

    def _start(self, address: str) -> NameFuture:
        """A new distinct address: answer from hosts or cache, or queue it for a worker."""
        self.stats.addresses += 1
        future: NameFuture = asyncio.get_running_loop().create_future()
        known = self._known(address)
        if known is not None:
            self._finish(future, known)
        else:
            self.unanswered += 1
            self._queue.put_nowait((address, future))
        return future

    async def answered(self) -> None:
        """Wait until one more of the :attr:`unanswered` addresses is answered."""
        self._freed.clear()
        await self._freed.wait()

    def _known(self, address: str) -> Answer | None:
        """The answer ``--hosts`` or the cache already holds (a negative entry counts as
        NXDOMAIN, whatever kind of "no name" it was when stored). Their names pass the same
        host-name rule as a PTR's: a hand-edited or poisoned row is bogus, not written."""
        name = self._hosts.get(address)
        if name is not None:
            self.stats.hosts_hits += 1
            return named(name)
        if address not in self._cached:
            return None
        self.stats.cache_hits += 1
        cached = self._cached[address]
        return Answer(None, Outcome.NXDOMAIN) if cached is None else named(cached)

    def _finish(self, future: NameFuture, answer: Answer) -> None:
        self.stats.count(answer.outcome)
        future.set_result(answer.name)

    async def _work(self) -> None:
        """One worker: take an address, resolve it, complete its future; forever."""
        while True:
            address, future = await self._queue.get()
            try:
                answer = await self.resolve(address)
                if self._cache is not None and answer.outcome.cacheable:
                    self._remember(address, answer)
            except Exception as exc:  # a bug or a cache error must surface in the output
                future.set_exception(exc)  # loop, not hang it
            else:
                self._finish(future, answer)
            self.unanswered -= 1
            self._freed.set()

    def _remember(self, address: str, answer: Answer) -> None:
        assert self._cache is not None
        settings = self.settings
        if answer.name is None:
            ttl = settings.negative_ttl
        else:
            ttl = clamp_ttl(answer.ttl, settings.min_ttl, settings.max_ttl)
        name = None if answer.name is None else answer.name.decode("ascii")
        self._cache.put(address, name, ttl, self._clock())

    async def resolve(self, address: str) -> Answer:
        """Look ``address`` up over DNS (PTR, then the forward check with ``verify``)."""
        question = Question(dns.reversename.from_address(address), dns.rdatatype.PTR)
        reply = await self._ask(question)
        if isinstance(reply, Outcome):
            return Answer(None, reply)
        answer = classify_ptr(reply, question.name)
        if answer.outcome is not Outcome.RESOLVED or not self.settings.verify:
            return answer
        return await self._confirm(address, answer)

    async def _confirm(self, address: str, answer: Answer) -> Answer:
        """Forward-confirmed reverse DNS: the name must resolve back to ``address``."""
        assert answer.name is not None
        qtype = dns.rdatatype.AAAA if is_ipv6(address) else dns.rdatatype.A
        question = Question(dns.name.from_text(answer.name.decode("ascii")), qtype)
        reply = await self._ask(question)
        if isinstance(reply, Outcome):
            return Answer(None, reply)
        ttl = confirms(reply, question.name, address)
        if ttl is None:
            return Answer(None, Outcome.UNVERIFIED)
        return Answer(answer.name, Outcome.RESOLVED, min(ttl, answer.ttl))

    async def _ask(self, question: Question) -> Reply | Outcome:
        """A reply (NOERROR or NXDOMAIN) to one question, or the failure that ended it."""
        if not self.settings.nameservers:
            return Outcome.SERVFAIL
        loop = asyncio.get_running_loop()
        s = self.settings
        attempts = Attempts(len(s.nameservers), s.retries, s.timeout, s.lifetime, loop.time())
        failure = Outcome.TIMEOUT
        while True:
            delay = self._rate.delay(loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            step = attempts.next(loop.time())
            if step is None:
                return failure
            try:
                reply = await self._transport.query(step[0], question, step[1])
                if reply.truncated:
                    reply = await self._transport.query_tcp(step[0], question, step[1])
            except LookupTimeout:
                failure = Outcome.TIMEOUT
                continue
            except LookupFailed:
                failure = Outcome.SERVFAIL
                continue
            if reply.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return reply
            failure = Outcome.SERVFAIL
