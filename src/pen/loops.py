"""The event loop: uvloop when it is installed, asyncio's selector loop otherwise or on request.

asyncio's selector loop is the one that can honour -m (it accepts at most ``backlog``
connections per readiness event) and -P (poll() instead of epoll()); uvloop is the fast one.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable

LOOPS = ("auto", "asyncio", "poll", "uvloop")


def _poll_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(selectors.PollSelector())


def loop_factory(name: str = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for ``asyncio.Runner``: auto (uvloop if installed), uvloop, asyncio, poll."""
    if name == "poll":
        return _poll_loop
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop
