"""pen's command line: GNU getopt over pen's option string, errors mapped to exit codes here only.

getopt rather than click: pen's options interleave with the positional arguments, ``-h``
means hash (not help), and options apply in command-line order (``-o`` runs at once).
Exit status: 0 normal stop (and usage on request), 1 startup failure, 2 usage error.
"""

from __future__ import annotations

import asyncio
import getopt
import logging
import logging.handlers
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

from . import completion
from .commands import execute, run_file
from .config import Settings, TlsSettings, parse_listen, parse_server
from .errors import PenError, StartupError
from .loops import LOOPS, loop_factory
from .state import PenState

SHORT = "B:C:F:O:S:T:b:c:e:i:j:l:m:o:p:q:t:u:w:x:DHNPQWXUadfhnrsE:K:G:A:ZRL:"
LONG = ["proxy-protocol=", "grace=", "loop=", "udp-idle=", "head-timeout=", "help", "metrics=",
        "version"]

USAGE = """\
usage:
  pen [-C addr:port] [-X] [-b sec] [-S N] [-c N] [-e host[:port]] \\
   [-t sec] [-x N] [-w dir] [-HPWadfhrs] \\
   [-o option] [-E certfile] [-K keyfile] \\
   [-G cacertfile] [-A cacertdir] \\
   [-Z] [-R] [-L protocol] \\
   [--proxy-protocol v1|v2] [--grace sec] [--loop auto|asyncio|poll|uvloop] \\
   [--metrics [host:]port] \\
   [--head-timeout sec] \\
   [host:]port h1[:p1[:maxc1[:hard1[:weight1[:prio1]]]]] \\
      [h2[:p2[:maxc2[:hard2[:weight2[:prio2]]]]]] ...

  -B host:port abuse server for naughty clients
  -C port   control port
  -T sec    tracking time in seconds (0 = forever) [0]
  -F file   name of configuration file
  -H add X-Forwarded-For and X-Forwarded-Proto headers
  -U use udp protocol support
  -W    use weight for server selection
  -X enable 'exit' command for control port
  -a    debugging dumps in ascii format (with -d -d -d)
  -b sec    blacklist time in seconds [30]
  -c N      max number of clients [2048]
  -d debugging on (repeat -d for more)
  -e host:port emergency server of last resort
  -f stay in foregound
  -h use hash for initial server selection
  -j dir    run in chroot
  -l file   logging on (file, or host:port for UDP netlog)
  -m N      max accepts per event (selects the asyncio loop; uvloop drains the backlog)
  -o "cmd"  run a control command now
  -p file   write pid to file
  -P    use poll() rather than epoll()
  -q N      listen backlog [500]
  -r    bypass client tracking in server selection
  -s stubborn selection, i.e. don't fail over
  -t sec    connect timeout in seconds [3]
  -u user   run as alternative user
  -w file   save statistics in HTML format in a file
  -x N      max number of simultaneous connections [500]
  -E certfile   use the given certificate in PEM format
  -K keyfile    use the given key in PEM format (may be contained in cert)
  -G cacertfile file containing the CA's certificate
  -A cacertdir  directory containing CA certificates in hashed format
  -Z use SSL compatibility mode
  -R require valid peer certificate
  -L protocol ssl23 (default), ssl3 or tls1
  --proxy-protocol v1|v2  send a PROXY protocol header to the backends
  --grace sec   how long TERM waits for open connections [10]
  --metrics [host:]port  serve Prometheus metrics at GET /metrics
  --loop name   event loop: auto (uvloop if installed), asyncio, poll or uvloop [auto]
  --udp-idle sec  close an idle UDP flow after this long [60]
  --version     print the version and exit
  --head-timeout sec  with -l or -H, answer 408 to a request head unfinished after sec [30]

example:
  pen smtp mailhost1:smtp mailhost2:25 mailhost3
"""


class UsageError(PenError):
    """A bad command line (exit 2)."""


@dataclass(slots=True)
class Invocation:
    """Parsed command line: settings plus the commands to run at startup, in order."""

    settings: Settings
    commands: list[str] = field(default_factory=list)
    loop: str = "auto"
    special: dict[str, str] = field(default_factory=dict)
    """-e and -B specs, parsed once the LISTEN port (their default port) is known."""


def _int_arg(opt: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"option {opt} needs a number, not {value!r}") from None


def _apply(s: Settings, inv: Invocation, opt: str, value: str) -> None:  # noqa: C901
    """Apply one option in command-line order."""
    numbers = {"-b": "blacklist", "-c": "clients_max", "-T": "tracking", "-x": "conn_max"}
    if opt in numbers:
        setattr(s, numbers[opt], max(0, _int_arg(opt, value)))
    elif opt == "-t":
        timeout = _int_arg(opt, value)
        if timeout < 1:
            raise UsageError("connect timeout (-t) must be at least 1 second")
        s.timeout = float(timeout)
    elif opt == "-m":
        accepts = _int_arg(opt, value)
        if accepts < 1:
            print("pen: multi_accept must be at least 1; using 1", file=sys.stderr)
        s.multi_accept = max(1, accepts)
    elif opt == "-P":
        inv.loop = "poll"
    elif opt == "-q":
        s.backlog = max(50, _int_arg(opt, value))
    elif opt in ("-e", "-B"):
        inv.special[opt] = value
    elif opt in ("-o", "-O"):
        inv.commands.append(value)
    elif opt == "-E":
        s.tls = s.tls or TlsSettings(value)
        s.tls.cert = value
    elif opt in ("-K", "-G", "-A", "-L"):
        s.tls = s.tls or TlsSettings("")
        attr = {"-K": "key", "-G": "ca_file", "-A": "ca_dir", "-L": "protocol"}[opt]
        if opt == "-L" and value not in ("ssl23", "ssl2", "ssl3", "tls1"):
            raise UsageError(f"protocol version {value} not known")
        setattr(s.tls, attr, value)
    elif opt == "-R":
        s.tls = s.tls or TlsSettings("")
        s.tls.require_client_cert = True
    elif opt == "--proxy-protocol":
        if value not in ("v1", "v2", "1", "2"):
            raise UsageError("--proxy-protocol takes v1 or v2")
        s.proxy_protocol = int(value[-1])
    elif opt == "--metrics":
        parse_listen(value)  # a bad spec is a usage error now, not a startup failure later
        s.metrics = value
    elif opt == "--grace":
        s.grace = float(_int_arg(opt, value))
    elif opt == "--head-timeout":
        s.head_timeout = float(max(0, _int_arg(opt, value)))
    elif opt == "--udp-idle":
        s.udp_idle = float(_int_arg(opt, value))
    elif opt == "--loop":
        if value not in LOOPS:
            raise UsageError(f"--loop takes one of {', '.join(LOOPS)}")
        inv.loop = value
    else:
        _apply_simple(s, opt, value)


def _apply_simple(s: Settings, opt: str, value: str) -> None:
    strings = {"-C": "control", "-F": "config_file", "-j": "chroot", "-l": "log",
               "-p": "pidfile", "-u": "user", "-w": "web_stats"}
    flags = {"-H": "http", "-U": "udp", "-W": "weight", "-X": "exit_enabled",
             "-f": "foreground", "-h": "hash", "-r": "roundrobin", "-s": "stubborn",
             "-a": "ascii"}
    if opt in strings:
        setattr(s, strings[opt], value)
    elif opt in flags:
        setattr(s, flags[opt], True)
    elif opt == "-d":
        s.debug += 1
    elif opt == "-Z":
        print("pen: -Z: Python's ssl module always sets SSL_OP_ALL", file=sys.stderr)
    elif opt in ("-D", "-Q", "-S", "-n"):
        print(f"pen: option {opt} is obsolete; ignored", file=sys.stderr)
    elif opt == "-N":
        raise UsageError("option -N is not supported")


def parse_args(argv: list[str]) -> Invocation:
    """Parse pen's command line into an Invocation.

    :raises UsageError: bad options or arguments.
    :raises SpecError: a bad LISTEN or server spec.
    """
    try:
        opts, args = getopt.gnu_getopt(argv, SHORT, LONG)
    except getopt.GetoptError as exc:
        raise UsageError(str(exc)) from None
    settings = Settings()
    inv = Invocation(settings)
    for opt, value in opts:
        if opt == "-i":
            raise UsageError("-i (install service) is Windows only")
        _apply(settings, inv, opt, value)
    if settings.multi_accept is not None:
        if inv.loop == "uvloop":
            raise UsageError("-m needs an asyncio loop (-P or --loop asyncio); "
                             "uvloop accepts until the backlog is empty")
        if inv.loop == "auto":
            inv.loop = "asyncio"
    if not args:
        raise UsageError("missing LISTEN address")
    if len(args) < 2 and not (settings.config_file or inv.commands):
        # With -F or -o the servers may come from those commands, as in pen.
        raise UsageError("no servers given")
    settings.listen = parse_listen(args[0], settings.udp)
    settings.listen_text = args[0]
    port = settings.listen.port
    settings.servers = [parse_server(a, port, settings.udp) for a in args[1:]]
    if "-e" in inv.special:
        settings.emergency = parse_server(inv.special["-e"], port, settings.udp)
    if "-B" in inv.special:
        settings.abuse = parse_server(inv.special["-B"], port, settings.udp)
    if settings.tls is not None and not settings.tls.cert:
        raise UsageError("-K/-G/-A/-R/-L need -E certfile")
    if settings.control and os.getuid() == 0 and not settings.user:
        raise StartupError("Won't open control port running as root; use -u to run as another user")
    return inv


def _setup_logging(settings: Settings) -> None:
    level = logging.DEBUG if settings.debug else logging.WARNING
    handler: logging.Handler
    if settings.foreground or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    else:
        handler = logging.handlers.SysLogHandler("/dev/log")
        handler.setFormatter(logging.Formatter("pen[%(process)d]: %(message)s"))
    root = logging.getLogger("pen")
    root.handlers[:] = [handler]
    root.setLevel(level)


def _daemonize() -> int:
    """Fork; the parent waits for the child's startup verdict and exits with it.

    Returns the write end of the verdict pipe in the child.
    """
    read_fd, write_fd = os.pipe()
    if os.fork() > 0:
        os.close(write_fd)
        verdict = os.read(read_fd, 4096)
        if verdict != b"ok":
            sys.stderr.write(verdict.decode("utf-8", "replace") or "pen: failed to start\n")
            os._exit(1)
        os._exit(0)
    os.close(read_fd)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return write_fd


async def _serve(core: PenState, verdict: int) -> None:
    from .app import serve_forever

    await serve_forever(core, (lambda: _report(verdict, b"ok")) if verdict >= 0 else None)


def _report(fd: int, message: bytes) -> None:
    try:
        os.write(fd, message)
        os.close(fd)
    except OSError:
        pass


def run(argv: list[str]) -> int:
    """Run pen with ``argv`` (without the program name); returns the exit status."""
    if not argv or argv == ["--help"]:
        sys.stdout.write(USAGE)
        return 0
    if argv == ["--version"]:
        sys.stdout.write(f"pen, version {metadata.version('pen-suite')}\n")
        return 0
    try:
        inv = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"pen: {exc}\n{USAGE}")
        return 2
    except ValueError as exc:
        sys.stderr.write(f"pen: {exc}\n")
        return 2
    except PenError as exc:
        sys.stderr.write(f"pen: {exc}\n")
        return 1
    return start(inv)


def start(inv: Invocation) -> int:
    """Build the state, run -o and -F commands, daemonize and serve."""
    settings = inv.settings
    try:
        core = PenState.from_settings(settings)
        now = time.time()
        for command in inv.commands:
            sys.stdout.write(execute(core, command, now))
        if settings.config_file:
            sys.stdout.write("".join(run_file(core, settings.config_file, now)))
        sys.stdout.flush()
    except OSError as exc:
        sys.stderr.write(f"pen: cannot read config file {exc.filename}: {exc.strerror}\n")
        return 1
    except PenError as exc:
        sys.stderr.write(f"pen: {exc}\n")
        return 1
    verdict = -1 if settings.foreground else _daemonize()
    _setup_logging(settings)
    try:
        with asyncio.Runner(loop_factory=loop_factory(inv.loop)) as runner:
            runner.run(_serve(core, verdict))
    except (StartupError, OSError) as exc:
        message = f"pen: {exc}\n"
        if verdict >= 0:
            _report(verdict, message.encode())
        sys.stderr.write(message)
        return 1
    return 0


def main() -> None:
    """Console-script entry point; ``_PEN_COMPLETE=bash_source pen`` prints the completion
    script, as click commands do for their own variable."""
    shell = os.environ.get("_PEN_COMPLETE")
    if shell:
        script = completion.source(shell, "pen", SHORT, LONG, {"--loop": LOOPS,
                                                              "--proxy-protocol": ("v1", "v2")})
        sys.stdout.write(script or f"pen: no completion for {shell} (bash_source, zsh_source)\n")
        sys.exit(0 if script else 2)
    sys.exit(run(sys.argv[1:]))
