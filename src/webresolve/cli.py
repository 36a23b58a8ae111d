"""The ``webresolve`` and ``splitwr`` commands: options in, exit status out.

Exit status: 0 done (every line written), 1 with ``--strict`` when the DNS left some
address unanswered, 2 for a usage or I/O error (one line on stderr), 141 when the reader
closed the output (``| head``: quietly, figures still printed), 128 + N on signal N
(130 Ctrl-C, 143 SIGTERM; no temporary file is left).
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mergelogs.shell import EXIT_PIPE, enter_held, signals_interrupt, silence_stdout, stop_code
from mergelogs.streams import Input, atomic_output, open_input, read_lines
from webresolve.app import resolve_all, run
from webresolve.cache import Cache
from webresolve.engine import Settings
from webresolve.errors import SpecError, WebresolveError
from webresolve.hostsfile import parse_hosts
from webresolve.stats import Stats, statistics_text
from webresolve.transport import Nameserver


class Fatal(click.ClickException):
    """An I/O or configuration error: exit status 2, like a usage error."""

    exit_code = 2


def parse_nameserver(text: str) -> Nameserver:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address.

    :raises SpecError: not an IP address, or a port outside 1-65535.
    """
    host, port = text, "53"
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise SpecError("nameserver", text, "expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise SpecError("nameserver", text, "not an IP address") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError("nameserver", text, "port must be 1-65535")
    return Nameserver(str(address), int(port))


class NameserverType(click.ParamType):
    """``--nameserver IP[:PORT]``."""

    name = "IP[:PORT]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Nameserver):
            return value
        try:
            return parse_nameserver(str(value))
        except SpecError as exc:
            self.fail(str(exc), param, ctx)


def system_nameservers() -> tuple[Nameserver, ...]:
    """The nameservers of /etc/resolv.conf; empty when it names none.

    dnspython's resolver is imported here, not at the top: runs given ``--nameserver`` never
    need it (the engine uses only dnspython's wire layer, through :mod:`webresolve.messages`).
    """
    import dns.asyncresolver
    import dns.resolver

    try:
        resolver = dns.asyncresolver.Resolver()
    except (dns.resolver.NoResolverConfiguration, OSError):
        return ()
    servers = []
    for server in resolver.nameservers:
        with contextlib.suppress(ValueError):
            servers.append(Nameserver(str(ipaddress.ip_address(str(server))), resolver.port))
    return tuple(servers)


_SECONDS = click.FloatRange(min=0.001)
_TTL = click.FloatRange(min=0)


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options webresolve and splitwr share."""
    decorators = [
        click.option(
            "-n",
            "--concurrency",
            type=click.IntRange(1, 10000),
            default=100,
            show_default=True,
            help="Lookups in flight at once.",
        ),
        click.option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write here instead of stdout (a regular file is replaced when done).",
        ),
        click.option(
            "--nameserver",
            "nameservers",
            type=NameserverType(),
            multiple=True,
            help="DNS server to ask (repeatable). Default: /etc/resolv.conf.",
        ),
        click.option(
            "--timeout",
            type=_SECONDS,
            default=2.0,
            show_default=True,
            help="Seconds to wait for one answer.",
        ),
        click.option(
            "--lifetime",
            type=_SECONDS,
            default=5.0,
            show_default=True,
            help="Seconds an address may take in all, retries included.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=2,
            show_default=True,
            help="Further attempts (next nameserver) after a timeout or SERVFAIL.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0),
            default=0.0,
            help="At most this many queries per second (0: no ceiling).",
        ),
        click.option(
            "--cache",
            "cache_path",
            metavar="FILE",
            help="Persistent answer cache (sqlite), shared across runs.",
        ),
        click.option(
            "--min-ttl",
            type=_TTL,
            default=300.0,
            show_default=True,
            help="Keep cached names at least this long (seconds).",
        ),
        click.option(
            "--max-ttl",
            type=_TTL,
            default=7 * 86400.0,
            show_default=True,
            help="Keep cached names at most this long (seconds).",
        ),
        click.option(
            "--negative-ttl",
            type=_TTL,
            default=3600.0,
            show_default=True,
            help="Remember 'no name' answers this long (seconds).",
        ),
        click.option(
            "--hosts",
            "hosts_path",
            metavar="FILE",
            help="/etc/hosts-style map consulted before DNS.",
        ),
        click.option(
            "--field",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Which space-separated field holds the address (2 for vhost_combined).",
        ),
        click.option(
            "--verify", is_flag=True, help="Use a name only if it resolves back to the address."
        ),
        click.option(
            "--window",
            type=click.IntRange(min=1),
            default=10000,
            show_default=True,
            help="Most distinct addresses waiting for an answer; reading pauses beyond.",
        ),
        click.option(
            "--buffer",
            type=click.FloatRange(min=0),
            default=32.0,
            show_default=True,
            metavar="MB",
            help="Held-back lines kept in memory; beyond, they wait in a file in $TMPDIR.",
        ),
        click.option("--summary", is_flag=True, help="Print a table of figures on stderr."),
        click.option(
            "-s", "--statistics", metavar="FILE", help="Write logresolve-style statistics to FILE."
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            help="Show the progress bar even when stderr is not a terminal.",
        ),
        click.option(
            "--strict",
            is_flag=True,
            help="Exit 1 when the DNS failed (timeout, SERVFAIL) for any address.",
        ),
        click.version_option(package_name="pen-suite"),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.argument("files", nargs=-1, metavar="[FILE]...")
def main(**options: Any) -> None:
    """Replace the client address of each access-log line with its host name.

    Reads FILEs (gzip, bzip2 or xz too) or stdin, writes every line in input order.
    """
    _execute(**options)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
def splitwr(**options: Any) -> None:
    """Resolve the client addresses of access-log FILEs (the pen examples' splitwr)."""
    _execute(**options)


def _execute(
    files: tuple[str, ...],
    output: str | None,
    nameservers: tuple[Nameserver, ...],
    cache_path: str | None,
    hosts_path: str | None,
    field: int,
    window: int,
    buffer: float,
    summary: bool,
    statistics: str | None,
    verbose: bool,
    strict: bool,
    **lookup: Any,
) -> None:
    """Check the options, run, report; map every expected error to exit status 2."""
    if lookup["min_ttl"] > lookup["max_ttl"]:
        raise click.UsageError("--min-ttl is larger than --max-ttl")
    hosts = _load_hosts(hosts_path) if hosts_path else {}
    servers = nameservers or system_nameservers()
    if not servers and not hosts:
        raise Fatal("no nameserver in /etc/resolv.conf: give --nameserver or --hosts")
    settings = Settings(servers, **lookup)
    stats = Stats()
    try:
        with signals_interrupt():
            inputs = _open_inputs(files or ("-",))
            try:
                budget = int(buffer * 2**20)
                closed = _resolve(inputs, output, settings, stats, cache_path, hosts, field,
                                  window, budget, verbose)
            finally:
                for source in inputs:
                    source.close()
    except BaseException as exc:
        code = stop_code(exc)
        if code is None:
            raise
        raise click.exceptions.Exit(code) from None
    _report(stats, summary, statistics)
    if closed:  # the reader has all it wanted (``| head``): no error, the shell's code
        silence_stdout()
        raise click.exceptions.Exit(EXIT_PIPE)
    if strict and stats.failed:
        raise click.exceptions.Exit(1)


def _resolve(
    inputs: list[Input],
    output: str | None,
    settings: Settings,
    stats: Stats,
    cache_path: str | None,
    hosts: dict[str, str],
    field: int,
    window: int,
    budget: int,
    verbose: bool,
) -> bool:
    """Resolve ``inputs`` into ``output``; True if the output's reader went away."""
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("resolving"),
        BarColumn(),
        TextColumn("{task.completed} lines"),
        TimeElapsedColumn(),
        console=console,
        disable=not (verbose or console.is_terminal),
    )
    lines = itertools.chain.from_iterable(read_lines(source) for source in inputs)
    try:
        mode = "fcrdns" if settings.verify else "ptr"
        cache = Cache(cache_path, mode, on_busy=_warn) if cache_path else None
        with progress, _closing(cache), contextlib.ExitStack() as stack:
            out = enter_held(stack, atomic_output(output))  # no signal between file and cleanup
            task = progress.add_task("resolve", total=None)
            run(
                resolve_all(
                    lines,
                    out,
                    settings,
                    stats,
                    field=field,
                    window=window,
                    budget=budget,
                    hosts=hosts,
                    cache=cache,
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
    except BrokenPipeError:
        return True
    except WebresolveError as exc:
        raise Fatal(str(exc)) from None
    except OSError as exc:
        raise Fatal(_describe(exc)) from None
    return False


@contextlib.contextmanager
def _closing(cache: Cache | None) -> Iterator[None]:
    try:
        yield
    finally:
        if cache is not None:
            cache.close()


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _load_hosts(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            return parse_hosts(lines, path)
    except WebresolveError as exc:
        raise Fatal(str(exc)) from None
    except OSError as exc:
        raise Fatal(_describe(exc)) from None


def _open_inputs(files: tuple[str, ...]) -> list[Input]:
    inputs: list[Input] = []
    try:
        for name in files:
            inputs.append(open_input(name))
    except OSError as exc:
        for source in inputs:
            source.close()
        raise Fatal(_describe(exc)) from None
    return inputs


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _report(stats: Stats, summary: bool, statistics: str | None) -> None:
    if summary:
        table = Table(title="webresolve")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in stats.rows():
            table.add_row(label, value)
        Console(stderr=True).print(table)
    if statistics:
        try:
            with open(statistics, "w", encoding="ascii") as out:
                out.write(statistics_text(stats))
        except OSError as exc:
            raise Fatal(_describe(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
