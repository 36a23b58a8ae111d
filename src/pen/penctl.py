"""penctl: send one command to a running pen's control port (-C) and print the reply.

Same syntax as pen's penctl: ``penctl host:port|/path command [args...]``; the words are
joined with single spaces and sent as one line, and the reply is copied to stdout as bytes.
Exit status: 0 when pen answered, 1 when it cannot be reached or does not answer in time,
2 for a usage error.
"""

from __future__ import annotations

import socket
import sys

import click

TIMEOUT = 10.0
"""Seconds to wait for the connect and for each part of the reply."""


class ControlAddress(click.ParamType):
    """``host:port`` (split at the last ':'; ``[v6]:port`` too), a bare port on this host, or
    a Unix socket path (anything with a '/')."""

    name = "host:port|/path"

    def convert(
        self, value: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, str | tuple[str, int]]:
        if "/" in value:
            return socket.AF_UNIX, value
        host, _, port = value.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(f"{value!r} is not host:port, a port or a socket path", param, ctx)
        try:
            info = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            self.fail(f"cannot resolve {host!r}: {exc}", param, ctx)
        family, _, _, _, sockaddr = info[0]
        return family, (str(sockaddr[0]), int(sockaddr[1]))


def ask(family: int, address: str | tuple[str, int], line: bytes, timeout: float) -> bytes:
    """Send ``line`` to pen's control port and return the whole reply.

    :raises OSError: connect, send or receive failed, or timed out.
    """
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        parts = []
        while chunk := sock.recv(65536):
            parts.append(chunk)
    return b"".join(parts)


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.version_option(package_name="pen-suite")
@click.option("-t", "--timeout", type=float, default=TIMEOUT, show_default=True,
              help="Seconds to wait for pen.")
@click.argument("address", type=ControlAddress())
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def main(address: tuple[int, str | tuple[str, int]], command: tuple[str, ...],
         timeout: float) -> None:
    """Send COMMAND to the pen whose control port (-C) is ADDRESS and print its reply."""
    family, target = address
    line = " ".join(command).encode("utf-8", "surrogateescape") + b"\n"
    where = target if isinstance(target, str) else f"{target[0]}:{target[1]}"
    try:
        reply = ask(family, target, line, timeout)
    except TimeoutError:
        raise click.ClickException(f"no answer from {where} within {timeout:g} s") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot connect to {where}: {exc.strerror or exc}") from None
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()
