"""``penlog`` and ``penlogd`` command lines (C pen's live log merge); errors become exit
codes here only: 0 ok, 1 lines cut or not sent (penlog), 2 usage or I/O error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import socket
import sys
from typing import cast

import click

from mergelogs.cli import FatalError
from mergelogs.live import LiveMerger, LiveSettings
from mergelogs.penlogd import Output, open_socket, serve
from mergelogs.sender import send_lines

EXIT_PARTIAL = 1


Address = tuple[str, int] | tuple[str, int, int, int]


def _target(server: str, port: int, my_ip: str | None) -> tuple[int, Address]:
    """The family and address to send to (of ``my_ip``'s family when it is given)."""
    family = socket.AF_UNSPEC
    if my_ip:
        family = socket.AF_INET6 if ":" in my_ip else socket.AF_INET
    try:
        infos = socket.getaddrinfo(server, port, family, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise FatalError(f"unknown server {server!r}: {exc}") from None
    found_family, _, _, _, address = infos[0]
    return found_family, cast(Address, address)


@click.command(context_settings={"help_option_names": ["--help"]})
@click.version_option(package_name="pen-suite")
@click.argument("server")
@click.argument("port", type=click.IntRange(1, 65535))
@click.argument("my_ip", required=False)
def penlog(server: str, port: int, my_ip: str | None) -> None:
    """Send each line of standard input as one UDP datagram to penlogd at SERVER PORT, from
    MY_IP if given (penlogd knows a web server by the address its lines come from).

    For Apache: CustomLog "|penlog lbhost 10000" common
    """
    family, target = _target(server, port, my_ip)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if my_ip:
            try:
                sock.bind((my_ip, 0))
            except OSError as exc:
                raise FatalError(f"cannot send from {my_ip}: {exc.strerror or exc}") from None
        stats = send_lines(sys.stdin.buffer, sock, target,
                           lambda problem: click.echo(f"penlog: {problem}", err=True))
    if stats.cut or stats.failed:
        sys.exit(EXIT_PARTIAL)


def _setup_logging(debug: int, foreground: bool) -> None:
    """-d: debugging to stderr in the foreground, to syslog otherwise (as C penlogd)."""
    handler: logging.Handler
    if foreground or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("penlogd: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler("/dev/log")
        handler.setFormatter(logging.Formatter("penlogd[%(process)d]: %(message)s"))
    logger = logging.getLogger("penlogd")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def _detach(keep_stdout: bool) -> None:
    """Go to the background: the parent exits 0, the child leaves the terminal's session
    and its stdio (C penlogd keeps them); stdout stays when it is the output (no -l)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 2) if keep_stdout else (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


@click.command(context_settings={"help_option_names": ["--help"]})
@click.version_option(package_name="pen-suite")
@click.option("-d", "debug", count=True, help="Debugging (stderr with -f, else syslog).")
@click.option("-f", "foreground", is_flag=True, help="Stay in the foreground.")
@click.option("-b", "line_buffered", is_flag=True,
              help="Accepted for compatibility: output is always written line by line.")
@click.option("-j", "chroot", metavar="DIR", help="Run in a chroot (paths then inside it).")
@click.option("-l", "logfile", metavar="FILE", help="Append the merged log here [stdout].")
@click.option("-n", "entries", type=click.IntRange(1), default=100_000, show_default=True,
              metavar="N",
              help="Pen entries held at most.")
@click.option("-p", "pidfile", metavar="FILE", help="Write the process id here.")
@click.option("-u", "user", metavar="USER", help="Run as this user (its group too).")
@click.option("--hold", type=click.FloatRange(0), default=2.0, show_default=True, metavar="SEC",
              help="Seconds a line waits for its pen entry.")
@click.option("--jitter", type=click.IntRange(0), default=60, show_default=True, metavar="SEC",
              help="Seconds between a line's time and its entry at most.")
@click.option("--max-skew", type=click.IntRange(0), default=60, show_default=True,
              metavar="SEC",
              help="Seconds a web server's clock may be off pen's host's, learnt from the logs.")
@click.option("--keep", type=click.IntRange(1), default=3600, show_default=True, metavar="SEC",
              help="Seconds a pen entry waits for its line (the longest request matched).")
@click.option("--bind", "host", default="", metavar="ADDR", help="Receive on ADDR only [all].")
@click.argument("port", type=click.IntRange(1, 65535))
def penlogd(debug: int, foreground: bool, line_buffered: bool, chroot: str | None,
            logfile: str | None, entries: int, pidfile: str | None, user: str | None,
            hold: float, jitter: int, max_skew: int, keep: int, host: str, port: int) -> None:
    """Receive pen's log (pen -l HOST:PORT) and the web servers' lines (penlog) on UDP PORT
    and write the merged log live, each line with its real client address."""
    from pen.app import drop_privileges, write_pidfile
    from pen.config import Settings
    from pen.errors import StartupError

    try:
        sock = open_socket(port, host)
    except OSError as exc:
        raise FatalError(f"cannot receive on port {port}: {exc.strerror or exc}") from None
    try:
        drop_privileges(Settings(user=user, chroot=chroot))
        output = Output(logfile)
    except StartupError as exc:
        raise FatalError(str(exc)) from None
    except OSError as exc:
        raise FatalError(f"cannot open {logfile}: {exc.strerror or exc}") from None
    if not foreground:
        _detach(keep_stdout=logfile is None)
    _setup_logging(debug, foreground)
    try:
        merger = LiveMerger(LiveSettings(hold, jitter, max_skew, keep, entries))
        asyncio.run(serve(sock, merger, output, (lambda: write_pidfile(pidfile)) if pidfile
                          else None))
    except StartupError as exc:
        logging.getLogger("penlogd").error("%s", exc)  # stderr may be gone (daemon)
        raise FatalError(str(exc)) from None
    finally:
        output.close()
        if pidfile:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
