"""The event loop: uvloop when it is installed, asyncio's default loop otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_factory(name: str = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for ``asyncio.Runner``: auto (uvloop if installed), uvloop, asyncio."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop
