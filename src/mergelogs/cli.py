"""``mergelogs`` command line: pen's options plus ours; the only place errors become exit codes."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import ipaddress
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from mergelogs.accesslog import line_format, parse_zone
from mergelogs.errors import InputError
from mergelogs.merge import PEN_LOG, Backend, Merger, Reject, Result, Settings
from mergelogs.parallel import ParallelMerge, plan
from mergelogs.shell import (
    EXIT_PIPE,
    Interrupted,
    enter_held,
    signals_interrupt,
    silence_stdout,
    stop_code,
)
from mergelogs.streams import Input, atomic_output, open_all, read_lines
from mergelogs.zones import ZoneChoice, choose_zone, first_stamped, line_stamp

log = logging.getLogger("mergelogs")

EXIT_PARTIAL = 1
WARN_UNMATCHED = 5.0
WARN_UNMATCHED_LINES = 10
"""Unmatched lines (percent, and at least this many) past which a run warns on stderr even
without --summary: most lines unmatched must never pass silently in cron."""
EXIT_USAGE = 2
DEFAULT_JOBS = 2
"""Worker processes unless --jobs says otherwise: each holds its own interpreter and window,
so more would trade the 300 MB bound of a 10-million-line merge for speed."""


class FatalError(click.ClickException):
    """An I/O problem: one line on stderr, exit 2."""

    exit_code = EXIT_USAGE


class BackendSpec(click.ParamType):
    """``server:logfile``, or ``[v6addr]:logfile``; split at the first colon as pen does."""

    name = "SERVER:LOGFILE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Backend:
        if isinstance(value, Backend):
            return value
        text = str(value)
        if text.startswith("["):
            server, sep, name = text[1:].partition("]:")
        else:
            server, sep, name = text.partition(":")
        if not sep or not server or not name:
            self.fail(f"{text!r} is not server:logfile", param, ctx)
        return Backend(self._address(server, param, ctx), name)

    def _address(
        self, server: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        """An IP address as is; a host name resolved to its first address, as pen does."""
        try:
            return str(ipaddress.ip_address(server))
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(server, None, proto=socket.IPPROTO_TCP)
        except OSError:
            self.fail(f"unknown server address {server!r}", param, ctx)
        return str(infos[0][4][0])


class ZoneSpec(click.ParamType):
    """An IANA time zone name or a fixed ``+hhmm``/``-hhmm``."""

    name = "ZONE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        try:
            parse_zone(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


class _Reporter:
    """Progress bar (when wanted) fed by the merge's line counts and the bytes read so far."""

    def __init__(self, sizes: list[int | None], console: Console, show: bool) -> None:
        total = sum(s for s in sizes if s is not None) if None not in sizes else None
        self.position: Callable[[], int] = lambda: 0
        self.progress = Progress(
            TextColumn("merging"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[lines]:,} lines"),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
            transient=True,
        )
        self._task = self.progress.add_task("merge", total=total, lines=0)
        self._lines = 0

    def lines(self, count: int) -> None:
        self._lines += count
        if self._lines % 8192 < count:
            self.progress.update(self._task, completed=self.position(), lines=self._lines)


def _summary_table(backends: list[Backend], result: Result, zone: ZoneChoice) -> Table:
    table = Table(title="mergelogs summary")
    for column in ("backend", "log", "lines", "matched", "unmatched", "unparsable",
                   "out of order", "clock offset"):
        table.add_column(column, justify="left" if column in ("backend", "log") else "right")
    for backend, stats in zip(backends, result.backends, strict=True):
        table.add_row(backend.address, backend.name, f"{stats.lines:,}", f"{stats.matched:,}",
                      f"{stats.unmatched:,}", f"{stats.unparsable:,}",
                      f"{stats.out_of_order:,}", f"{stats.offset:+.1f} s")
    table.caption = (f"pen.log: {result.pen_entries:,} entries, {result.pen_unused:,} unused, "
                     f"{result.pen_unusable:,} without a client address, "
                     f"{result.pen_outliers:,} set aside (time far from their neighbours'), "
                     f"{result.pen_steps:,} clock steps followed\n{zone.describe()}")
    return table


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-p", "penlog", metavar="PENLOG", help="Log file written by pen (-l).")
@click.option("-j", "jitter", type=click.IntRange(0), default=600, show_default=True,
              help="Seconds between a request in pen.log and in a backend log.")
@click.option("-t", "shift", type=int, default=0,
              help="Seconds to subtract from pen.log times (pen's clock ahead of the backends).")
@click.option("-c", "no_cache", is_flag=True, help="Accepted for compatibility; no effect.")
@click.option("-d", "debug", count=True, help="Debugging on stderr (repeat for more).")
@click.option("-o", "output", metavar="FILE",
              help="Write here instead of stdout (a regular file is replaced when done).")
@click.option("-r", "rejects", metavar="FILE",
              help="Write every line that kept its original client, with the reason.")
@click.option("--tz", "tz", type=ZoneSpec(),
              help="Write every time in this zone (IANA name or +hhmm). Default: as logged "
                   "when the inputs share one zone, else the first backend's zone.")
@click.option("--utc", is_flag=True, help="Write every time in +0000 (--tz +0000).")
@click.option("--keep-zones", is_flag=True,
              help="Keep each line's own time text even when the inputs' zones differ.")
@click.option("--summary", is_flag=True, help="Print per-backend figures on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Progress and summary even off a terminal.")
@click.option("--reorder", type=click.IntRange(0), default=60, show_default=True,
              help="Seconds a backend may write a line after a later one.")
@click.option("--max-skew", type=click.IntRange(0), default=60, show_default=True,
              help="Largest backend clock offset to estimate, in seconds.")
@click.option("--max-unmatched", type=click.FloatRange(0, 100), default=None,
              help="Exit 1 if more than this percentage of lines stay unmatched.")
@click.option("--jobs", type=click.IntRange(0), default=0,
              help="Worker processes (0: two, or one on a single CPU; at most one per backend).")
@click.argument("backends", nargs=-1, type=BackendSpec())
@click.version_option(package_name="pen-suite")
def main(
    penlog: str | None,
    jitter: int,
    shift: int,
    no_cache: bool,
    debug: int,
    output: str | None,
    rejects: str | None,
    tz: str | None,
    utc: bool,
    keep_zones: bool,
    summary: bool,
    verbose: bool,
    reorder: int,
    max_skew: int,
    max_unmatched: float | None,
    jobs: int,
    backends: tuple[Backend, ...],
) -> None:
    """Merge backend access logs into one time-ordered log with pen's client addresses.

    SERVER is the backend address as in pen.log (use [v6addr] for IPv6); LOGFILE may be
    '-' for stdin and may be gzip, bzip2 or xz compressed.
    """
    if penlog is None:
        raise click.UsageError("missing -p PENLOG")
    if not backends:
        raise click.UsageError("no SERVER:LOGFILE given")
    if [penlog, *(b.name for b in backends)].count("-") > 1:
        raise click.UsageError("only one input can be stdin ('-')")
    if sum((tz is not None, utc, keep_zones)) > 1:
        raise click.UsageError("--tz, --utc and --keep-zones exclude each other")
    _debug_to_stderr(debug)
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 160
    settings = Settings(jitter=jitter, shift=shift, window=reorder, radius=max_skew,
                        zone="+0000" if utc else tz)
    jobs = jobs or min(DEFAULT_JOBS, len(os.sched_getaffinity(0)))
    try:
        with signals_interrupt(), _no_cycle_collection():
            result, zone, closed = _run(penlog, list(backends), settings, keep_zones, jobs,
                                        output, rejects, console,
                                        verbose or console.is_terminal)
    except Interrupted as exc:
        raise click.exceptions.Exit(exc.exit_code) from None
    except InputError as exc:
        raise FatalError(str(exc)) from exc
    except OSError as exc:
        code = stop_code(exc)
        if code is not None:  # a worker stopped by the same signal
            raise click.exceptions.Exit(code) from None
        raise FatalError(f"{exc.filename or 'output'}: {exc.strerror or exc}") from exc
    if summary or verbose:
        console.print(_summary_table(list(backends), result, zone))
    if closed:  # the reader has all it wanted (``| head``): no error, the shell's code
        silence_stdout()
        raise click.exceptions.Exit(EXIT_PIPE)
    share = 100.0 * result.unmatched / result.lines if result.lines else 0.0
    if max_unmatched is not None and share > max_unmatched:
        click.echo(f"mergelogs: {share:.2f}% of lines unmatched "
                   f"(more than {max_unmatched}%)", err=True)
        sys.exit(EXIT_PARTIAL)
    if share > WARN_UNMATCHED and result.unmatched >= WARN_UNMATCHED_LINES:
        click.echo(f"mergelogs: warning: {result.unmatched:,} of {result.lines:,} lines "
                   f"({share:.1f}%) found no pen.log entry and kept their client", err=True)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The merge makes no reference cycles, so the cycle collector would only rescan the
    window's objects over and over (a fifth of the run time): keep it off meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _debug_to_stderr(level: int) -> None:
    """-d: reasons for each reject on stderr; -dd: more."""
    log.handlers.clear()
    log.propagate = False
    if level:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mergelogs: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if level > 1 else logging.INFO if level else logging.WARNING)


def _run(
    penlog: str,
    backends: list[Backend],
    settings: Settings,
    keep_zones: bool,
    jobs: int,
    output: str | None,
    rejects: str | None,
    console: Console,
    show_progress: bool,
) -> tuple[Result, ZoneChoice, bool]:
    """Merge into ``output``: the figures, the zone written, and True if the output's reader
    went away."""
    merge: Merger | ParallelMerge | None = None
    try:
        with contextlib.ExitStack() as stack:
            pen_input, *inputs = open_all(stack, [penlog, *(b.name for b in backends)])
            reject_out: BinaryIO | None = None
            if rejects is not None:
                reject_out = enter_held(stack, atomic_output(rejects))
            out = enter_held(stack, atomic_output(output))
            firsts, logs = zip(*(first_stamped(read_lines(i)) for i in inputs), strict=True)
            _warn_mixed_formats(backends, firsts)
            zone = choose_zone([None if line is None else line_stamp(line) for line in firsts],
                               settings.zone, keep_zones)
            settings = dataclasses.replace(settings, zone=zone.zone)
            log.info("%s", zone.describe())
            sizes = [i.size for i in inputs]
            groups = plan(sizes, jobs)
            if not all(map(_reopenable, [pen_input, *inputs])):  # workers open inputs again
                groups = [list(range(len(backends)))]
            reporter = _Reporter(sizes, console, show_progress)
            reject = _reject_writer(penlog, backends, reject_out)
            blocks: Iterable[Iterable[bytes]]
            if len(groups) > 1:
                try:
                    merge = ParallelMerge(penlog, backends, groups, settings, reject,
                                          reporter.lines)
                except OSError as exc:
                    log.info("cannot start worker processes (%s): merging in one", exc)
            if isinstance(merge, ParallelMerge):
                stack.enter_context(merge)  # a closed output: the figures so far first
                logs = ()  # the workers read the logs themselves: drop what the peek holds
                positions = merge.positions
                reporter.position = lambda: sum(positions)
                blocks = ((block,) for block in merge)
            else:
                merge = Merger(backends, list(logs), read_lines(pen_input),
                               settings, reject, reporter.lines)
                reporter.position = lambda: sum(i.position() for i in inputs)
                blocks = merge.batches()
            with reporter.progress:
                write = out.writelines
                for batch in blocks:
                    write(batch)
    except BrokenPipeError:
        if merge is None:
            raise
        return merge.result(), zone, True
    assert merge is not None
    return merge.result(), zone, False


def _reopenable(source: Input) -> bool:
    """A regular file: a worker reading it again gets every line, where stdin, a FIFO or a
    shell's ``<(...)`` would hand each reader a part of the stream."""
    return source.name != "-" and stat.S_ISREG(os.fstat(source.raw.fileno()).st_mode)


def _warn_mixed_formats(backends: list[Backend], firsts: Iterable[bytes | None]) -> None:
    """Say once when the inputs' first lines are in different formats: an analyser reads one
    format and rejects (or miscounts) the lines of the others."""
    formats = []
    for backend, line in zip(backends, firsts, strict=True):
        shape = None if line is None else line_format(line)
        if shape is not None:
            formats.append((backend.name, shape))
    if len({shape for _, shape in formats}) > 1:
        listed = ", ".join(f"{name}: {shape}" for name, shape in formats)
        click.echo(f"mergelogs: warning: the inputs mix log formats ({listed}); an analyser "
                   "reads one format", err=True)


def _reject_writer(penlog: str, backends: list[Backend],
                   out: BinaryIO | None) -> Callable[[Reject], None]:
    def reject(item: Reject) -> None:
        name = penlog if item.backend == PEN_LOG else backends[item.backend].name
        log.info("%s:%d: %s", name, item.lineno, item.reason)
        if out is not None:
            out.write(b"%s:%d: %s: %s" % (name.encode(), item.lineno, item.reason.encode(),
                                          item.raw))
    return reject
