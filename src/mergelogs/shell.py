"""How a stream tool ends as shell tools do: signals and a closed stdout become exit codes.

Shared by mergelogs and webresolve (both are filters in cron pipelines). Python's default
SIGTERM kills the process before any ``finally`` runs, which would leave a half-written
temporary output file behind; Ctrl-C through click exits 1, the code of a partial result.
So while a run lasts, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`: everything
unwinds (temporary files are removed), and the CLI exits 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import TypeVar

EXIT_PIPE = 128 + signal.SIGPIPE
"""The exit code when the reader closed stdout: the shell's for a process killed by
SIGPIPE, as ``grep`` or ``sort`` report under ``| head``."""
CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """A signal asked the run to stop.

    A KeyboardInterrupt, because that is what an event loop lets through whatever it was
    running (a callback's other exceptions are only logged), and no ``except Exception``
    holds it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's code for this signal: 130 for INT, 143 for TERM, 129 for HUP."""
        return 128 + self.signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


_received: list[int] = []
"""The signal that stopped this run, once one has."""


def _raise(signum: int, frame: FrameType | None) -> None:
    """A caught signal arrived: ignore further ones while the run unwinds, then stop it.

    The exception may surface inside an event loop's own machinery (uvloop then fails to
    close and says so): what is left of the run is quiet, and :func:`stop_code` reads any
    exception that follows as this signal.
    """
    for other in CAUGHT:
        signal.signal(other, signal.SIG_IGN)
    _received.append(signum)
    warnings.simplefilter("ignore")  # "coroutine ... was never awaited" and the like
    logging.disable(logging.CRITICAL)  # asyncio's "Task was destroyed but it is pending!"
    sys.unraisablehook = _quiet  # "Exception ignored in ...": an event loop torn down early
    raise Interrupted(signum)


def _quiet(unraisable: object) -> None:
    """Say nothing of errors in finalizers while a signal stops the run."""


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While the block runs, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`."""
    previous = {signum: signal.signal(signum, _raise) for signum in CAUGHT}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_code(exc: BaseException) -> int | None:
    """The exit code for ``exc`` if a signal stopped the run (128 + its number), else None."""
    if isinstance(exc, Interrupted):
        return exc.exit_code
    return 128 + _received[0] if _received else None


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold the caught signals back while the block runs (they arrive at the end of the
    outermost such block: these nest).

    For forking: the interpreter's at-fork hooks swallow any exception, so a signal handled
    in one would be lost, and the run would go on with further signals ignored. For making a
    resource: see :func:`enter_held`.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def enter_held(stack: contextlib.ExitStack[bool | None],
               manager: contextlib.AbstractContextManager[T]) -> T:
    """Enter ``manager`` on ``stack`` with the caught signals held, so that a signal cannot
    raise between its ``__enter__`` and the stack's record of its ``__exit__``.

    Raised there, the manager would never be exited: a temporary output file would be left
    to the collector, which may run only at shutdown, when the file's module is gone and the
    error it meets is silenced (the signal set the quiet hook): the file stays behind.
    """
    with signals_held():
        return stack.enter_context(manager)


def worker_signals() -> None:
    """In a worker process (forked inside :func:`signals_held`): a terminal's Ctrl-C or
    hangup reaches the whole process group, but only the parent decides (it cleans up and
    stops its workers with SIGTERM, which kills a worker outright)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CAUGHT)


def silence_stdout() -> None:
    """The reader closed stdout: point it at /dev/null, so that the interpreter's last flush
    of what is still buffered does not print a second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
