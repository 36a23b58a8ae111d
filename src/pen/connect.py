"""Drive one ``create_connection`` coroutine with callbacks instead of a Task.

A Task per upstream connect cost about a quarter of the per-connection budget of the
balancer (measured with wrk, one connection per request). The coroutine of a connect to a
numeric address awaits a single future, so stepping it by hand, as Task.__step does, is
short: send(None), and when it yields a future, resume on that future's completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Done = Callable[[BaseException], None]


class Connect:
    """A running connect; ``done(exc)`` on failure or cancel (success is the protocol's
    connection_made, so nothing more is called for it: one call less per connection)."""

    __slots__ = ("_coro", "_waiting", "_done")

    def __init__(self, coro: Coroutine[Any, Any, Any], done: Done) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = coro
        self._waiting: asyncio.Future[Any] | None = None
        self._done = done

    def start(self) -> None:
        """Run the coroutine up to its first wait; ``done`` may already be called here."""
        self._step(None)

    def _step(self, _: object) -> None:
        """Resume the coroutine (first call, or its awaited future completed)."""
        coro = self._coro
        if coro is None:
            return
        self._waiting = None
        try:
            future = coro.send(None)
        except StopIteration:
            self._coro = None
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._finish(exc)
            return
        if future is None:
            asyncio.get_running_loop().call_soon(self._step, None)
            return
        future._asyncio_future_blocking = False
        future.add_done_callback(self._step)
        self._waiting = future

    def _finish(self, exc: BaseException) -> None:
        self._coro = None
        self._done(exc)

    def cancel(self) -> None:
        """Abandon the connect (timeout or client gone); the coroutine closes its transport."""
        coro = self._coro
        if coro is None:
            return
        if self._waiting is not None:
            self._waiting.remove_done_callback(self._step)
            self._waiting = None
        error = asyncio.CancelledError()
        try:
            coro.throw(error)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            pass
        coro.close()
        self._finish(error)
