"""The merge spread over processes, one per group of backends.

Design notes
------------
Matching a backend's lines needs only its own lines, pen.log's entries for its address and
its own clock offset, so groups of backends merge independently: each worker process runs a
:class:`~mergelogs.merge.Merger` over its backends and the whole pen.log (keeping only its
servers' entries) and sends each second's output as one joined block per backend. The
parent only interleaves the workers' seconds, backends in argument order within a second,
and writes the blocks: it never touches a line. A worker blocks when its pipe is full, so
memory stays bounded by each worker's window, as in one process.

When the output's reader goes away (``| head``), the summary must still be true. The parent
does not merge on without writing (``sort`` must read everything before its first line; a
merge need not, and a 10-million-line run would go on for minutes for nobody): it raises a
flag shared with the workers, and each one, at its next message, sends its figures so far
instead of merging on; the parent reads and drops what is still in the pipes meanwhile.
The summary then has the figures of what was merged up to that point, as one process's.

The output is the one-process merge's, byte for byte, but for two rare cases: a line later
than the reorder window may be placed in another second (each group releases its seconds on
its own backends' progress), and on a farm where every request is popular the offsets come
from counts taken at other moments.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import heapq
import itertools
import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from types import TracebackType

from mergelogs.errors import InputError
from mergelogs.merge import PEN_LOG, Backend, BackendStats, Merger, Reject, Result, Settings
from mergelogs.shell import signals_held, worker_signals
from mergelogs.streams import Input, Spool, open_all, read_lines

SEND_BYTES = 1 << 20
"""Output bytes a worker gathers before sending them to the parent."""

Group = tuple[int, bytes | tuple[bytes, ...]]
"""(backend index, the joined output lines of that backend in one second, or the lines as a
tuple when one of them waits in the worker's spool)."""
Second = tuple[int, list[Group], list[Reject]]
"""A second of one worker's output, and the lines in it that kept their original client."""


def plan(sizes: list[int | None], jobs: int) -> list[list[int]]:
    """Backend indices per worker: biggest log first onto the least loaded worker, so the
    workers finish together; unknown sizes (pipes) count as the average."""
    known = [size for size in sizes if size is not None]
    average = sum(known) / len(known) if known else 1
    weights = [float(size) if size is not None else average for size in sizes]
    loads = [(0.0, worker) for worker in range(min(jobs, len(sizes)))]
    groups: list[list[int]] = [[] for _ in loads]
    for index in sorted(range(len(sizes)), key=lambda i: -weights[i]):
        load, worker = heapq.heappop(loads)
        groups[worker].append(index)
        heapq.heappush(loads, (load + weights[index], worker))
    return [sorted(group) for group in groups]


def _work(conn: Connection, penlog: str, backends: list[Backend], indices: list[int],
          settings: Settings, spool: Spool, stop: ctypes.c_byte) -> None:
    """A worker: merge ``backends`` (numbered ``indices`` in the parent) and send the output.

    Messages: ("seconds", [Second...], lines read, bytes read), then ("done", Result), or
    ("input", name, reason) / ("os", filename, reason) on failure. Once ``stop`` is set, the
    next "seconds" is the last: "done" follows with the figures so far.
    """
    worker_signals()
    try:
        with contextlib.ExitStack() as stack:
            pen, *inputs = open_all(stack, [penlog, *(b.name for b in backends)])
            rejects: list[Reject] = []
            read = [0]

            def reject(item: Reject) -> None:
                if item.backend != PEN_LOG:
                    rejects.append(dataclasses.replace(item, backend=indices[item.backend]))
                elif 0 in indices:  # every worker reads pen.log: one reports it
                    rejects.append(item)

            def lines(count: int) -> None:
                read[0] += count

            merger = Merger(backends, [read_lines(i) for i in inputs], read_lines(pen),
                            settings, reject, lines, spool)
            gathered: list[Second] = []
            size = 0
            for second, groups in merger.groups():
                gathered.append((second, [(indices[b], block) for b, block in groups],
                                 rejects[:]))
                rejects.clear()
                size += sum(len(block) for _, block in groups)
                if size >= SEND_BYTES:
                    conn.send(("seconds", gathered, read[0], _position(inputs)))
                    gathered, size, read[0] = [], 0, 0
                    if stop.value:  # the output's reader has gone: figures so far
                        break
            conn.send(("seconds", gathered, read[0], _position(inputs)))
            conn.send(("done", merger.result()))
    except InputError as exc:
        _tell(conn, ("input", exc.name, exc.reason))
    except OSError as exc:
        _tell(conn, ("os", exc.filename, exc.strerror or str(exc)))
    finally:
        conn.close()


def _tell(conn: Connection, message: tuple[str, str | None, str]) -> None:
    """Report a failure, unless the parent has gone (it stopped reading: nothing to tell)."""
    with contextlib.suppress(OSError):
        conn.send(message)


def _position(inputs: list[Input]) -> int:
    return sum(i.position() for i in inputs)


class ParallelMerge:
    """Run the merge in ``len(groups)`` worker processes; iterate for the output blocks.

    :param groups: backend indices per worker (see :func:`plan`).
    :param reject: called in the parent for every line that kept its original client.
    :param on_lines: progress, with the number of lines read since the last call.

    :raises OSError: a worker could not be started (the others are stopped).
    """

    def __init__(self, penlog: str, backends: list[Backend], groups: list[list[int]],
                 settings: Settings, reject: Callable[[Reject], None] | None = None,
                 on_lines: Callable[[int], None] | None = None) -> None:
        self._backends = backends
        self._groups = groups
        self._reject = reject
        self._on_lines = on_lines
        self._results: list[Result | None] = [None] * len(groups)
        self.positions = [0] * len(groups)
        """Raw bytes each worker has read of its backend logs (for a progress bar)."""
        self._spools = [Spool() for _ in groups]
        """Per worker, where it sets long lines aside (made here: both sides use it)."""
        self._worker_of = {index: worker for worker, group in enumerate(groups)
                           for index in group}
        context = multiprocessing.get_context("fork")
        self._stop: ctypes.c_byte = context.RawValue(ctypes.c_byte, 0)
        """Set when the output is abandoned (see :meth:`stop`); shared memory, lock-free."""
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        try:
            for group in groups:
                parent, child = context.Pipe(duplex=False)
                self._conns.append(parent)
                proc = context.Process(target=_work, daemon=True, args=(
                    child, penlog, [backends[i] for i in group], group, settings,
                    self._spools[len(self._procs)], self._stop))
                with signals_held():
                    proc.start()
                child.close()
                self._procs.append(proc)
        except OSError:
            self.close()
            raise

    def __iter__(self) -> Iterator[bytes]:
        """The output blocks in order: by second, then backend in argument order."""
        try:
            streams = [self._seconds(worker) for worker in range(len(self._groups))]
            merged = heapq.merge(*streams, key=lambda item: item[0])
            for _, same in itertools.groupby(merged, key=lambda item: item[0]):
                parts = list(same)
                if self._reject is not None:
                    rejects = [item for _, _, items in parts for item in items]
                    for item in sorted(rejects, key=lambda r: (r.backend, r.lineno)):
                        self._reject(item)
                for backend, block in sorted(group for _, groups, _ in parts
                                             for group in groups):
                    if type(block) is bytes:
                        yield block
                    else:
                        spool = self._spools[self._worker_of[backend]]
                        for batch in spool.expand(block):  # type: ignore[arg-type]
                            yield b"".join(batch)
        finally:
            self.close()

    def _seconds(self, worker: int) -> Iterator[Second]:
        """One worker's seconds as they arrive; its result is kept when it ends."""
        conn = self._conns[worker]
        while True:
            try:
                message = conn.recv()
            except EOFError:
                raise RuntimeError(f"mergelogs worker {worker} died") from None
            kind = message[0]
            if kind == "seconds":
                _, seconds, lines, position = message
                self.positions[worker] = position
                if self._on_lines is not None and lines:
                    self._on_lines(lines)
                yield from seconds
            elif kind == "done":
                self._results[worker] = message[1]
                return
            elif kind == "input":
                raise InputError(message[1], message[2])
            else:
                raise OSError(None, message[2], message[1])

    def result(self) -> Result:
        """The figures of the whole merge (or, after :meth:`stop`, so far), per backend in
        argument order.

        Every worker reads all of pen.log: its figures are the furthest reader's, and an
        entry is unused when no worker matched it.
        """
        results = [r for r in self._results if r is not None]
        stats = [BackendStats() for _ in self._backends]
        for group, result in zip(self._groups, self._results, strict=True):
            if result is not None:
                for index, figures in zip(group, result.backends, strict=True):
                    stats[index] = figures
        if not results:
            return Result(stats)
        pen = max(results, key=lambda r: r.pen_entries)
        unused = (pen.pen_entries - pen.pen_unusable - pen.pen_outliers
                  - sum(s.matched for s in stats))
        return Result(stats, pen.pen_entries, unused, pen.pen_unusable, pen.pen_outliers,
                      pen.pen_steps)

    def stop(self) -> None:
        """The output's reader has gone: have every worker stop at its next message and
        collect its figures so far, dropping the output it sends meanwhile."""
        self._stop.value = 1
        for worker, conn in enumerate(self._conns):
            if self._results[worker] is not None:
                continue
            with contextlib.suppress(EOFError, OSError):  # a worker that failed: no figures
                while (message := conn.recv())[0] == "seconds":
                    pass
                if message[0] == "done":
                    self._results[worker] = message[1]

    def __enter__(self) -> ParallelMerge:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the workers; first collect their figures if the output's reader went away."""
        try:
            if isinstance(exc, BrokenPipeError):
                self.stop()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers (at once if the output was abandoned) and wait for them."""
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            if proc.is_alive():
                proc.join(timeout=0.1)
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for spool in self._spools:
            spool.close()
