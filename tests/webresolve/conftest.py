"""Fixtures: an event-loop runner over asyncio and uvloop, and DNS servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from webresolve.testing import FakeDns, ServerThread

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Run a coroutine to completion on a fresh loop of each kind, in debug mode."""
    factory = asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory, debug=request.param == "asyncio") as r:
            return r.run(coro)

    return runner


@pytest.fixture
def dns_thread() -> Iterator[tuple[FakeDns, int]]:
    """A :class:`FakeDns` on its own thread; tests add rules before querying."""
    server = FakeDns()
    with ServerThread(server) as thread:
        yield server, thread.port


def log_line(client: str, path: str = "/") -> bytes:
    """A combined-format line with ``client`` as its first field."""
    return (
        f'{client} - - [10/Oct/2023:13:55:36 -0400] "GET {path} HTTP/1.1" 200 2326 "-" "curl/8"\n'
    ).encode()
