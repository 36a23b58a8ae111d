"""The demo's clients: keep-alive HTTP/1.1 connections from several loopback addresses.

Each request has a path no other request has (``?id=N``), so it can be found again in the
merged log; :class:`Sent` records what went out and from which address. Bounded in count
(``total``) and in time (``REQUEST_SECONDS`` per request).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

REQUEST_SECONDS = 10.0
PAGES = ("/", "/index.html", "/news/{n}.html", "/shop/item/{n}", "/img/photo{n}.jpg",
         "/css/site.css", "/js/app.js", "/search?q=pen+{n}", "/missing/{n}.html")
AGENTS = (b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
          b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          b"Chrome/126.0 Safari/537.36",
          b"curl/8.8.0",
          b"Wget/1.24.5")


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the generator made and the answer it got."""

    client: str
    method: str
    path: str
    status: int


class LoadError(Exception):
    """The balancer did not answer as HTTP should."""


@dataclass(slots=True)
class Plan:
    """Which request comes next: a shared counter over all connections."""

    total: int
    rng: random.Random
    issued: int = 0

    def next(self) -> tuple[str, str, bytes, bytes | None] | None:
        """Method, path, extra headers and body of the next request; None once all are out."""
        if self.issued >= self.total:
            return None
        self.issued += 1
        rng = self.rng
        path = rng.choice(PAGES).format(n=rng.randrange(1, 60))
        path += ("&" if "?" in path else "?") + f"id={self.issued}"
        roll = rng.random()
        method = "POST" if roll < 0.08 else "HEAD" if roll < 0.12 else "GET"
        headers = b"User-Agent: %s\r\n" % rng.choice(AGENTS)
        if rng.random() < 0.6:
            headers += b"Referer: http://www.example.com/news/%d.html\r\n" % rng.randrange(60)
        body = b"q=%d" % self.issued if method == "POST" else None
        return method, path, headers, body


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, bool]:
    """Status and whether the server keeps the connection; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *fields = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise LoadError(f"not an HTTP response: {status_line!r}")
    headers = {}
    for field in fields:
        name, _, value = field.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if method != "HEAD":
        await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return int(parts[1]), headers.get(b"connection", b"").lower() != b"close"


async def _connection(port: int, client: str, plan: Plan, per_connection: int,
                      record: Callable[[Sent], None]) -> bool:
    """One keep-alive connection from ``client``; False once the plan is exhausted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(client, 0))
    try:
        for _ in range(per_connection):
            request = plan.next()
            if request is None:
                return False
            method, path, headers, body = request
            writer.write(b"%s %s HTTP/1.1\r\nHost: www.example.com\r\n%s" % (
                method.encode(), path.encode(), headers))
            if body is not None:
                writer.write(b"Content-Type: application/x-www-form-urlencoded\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                writer.write(b"\r\n")
            async with asyncio.timeout(REQUEST_SECONDS):  # not wait_for: 3.11's can lose a cancel
                status, keep = await _read_response(reader, method)
            record(Sent(client, method, path, status))
            if not keep:
                break
        return True
    finally:
        writer.close()


async def run_load(port: int, clients: list[str], total: int, connections: int, seed: int,
                   record: Callable[[Sent], None]) -> None:
    """Send ``total`` requests to 127.0.0.1:``port`` over ``connections`` concurrent
    keep-alive connections, each bound to one of ``clients`` in turn.

    :raises LoadError: an answer that is not HTTP.
    :raises OSError: the balancer refused or reset a connection.
    """
    plan = Plan(total, random.Random(seed))

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        turn = index
        while await _connection(port, clients[turn % len(clients)], plan,
                                rng.randrange(1, 30), record):
            turn += connections

    async with asyncio.TaskGroup() as group:
        for index in range(connections):
            group.create_task(worker(index))
