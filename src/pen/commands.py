"""pen's command interpreter (penctl, -F files, -o/-O and ``include``): one line in, reply text out.

A line is cut at the first CR or LF and split on spaces only, as pen does. Each command has
one handler chosen from a table; a handler gets the state, the words after the command name
and ``now``, and returns the reply (often empty). ``no X`` switches a flag off or clears a
setting. Unknown commands answer pen's "ignoring" message so scripts see the same text.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Iterable

from .acl import ACL_COUNT, parse_entry
from .config import parse_listen, parse_port, resolve_host
from .conntable import ConnectionInfo
from .errors import IncludeLoop, PenError
from .savecfg import render_config
from .state import PenState

Handler = Callable[[PenState, list[str], float], str]

logger = logging.getLogger("pen.error")

FLAGS = {
    "ascii": "ascii",
    "hash": "hash",
    "http": "http",
    "keepalive": "keepalive",
    "prio": "prio",
    "roundrobin": "roundrobin",
    "stubborn": "stubborn",
    "weight": "weight",
}
"""Commands that switch a boolean setting on (``no CMD`` switches it off)."""

MODE_FLAGS = ("hash", "roundrobin", "stubborn", "weight", "prio")

FASTCLOSE = ("up", "down", "both", "off")

INCLUDE_DEPTH = 16
"""Nesting allowed for ``include`` (a loop is refused before it runs)."""


def split_line(line: str) -> list[str]:
    """The words of a command line: cut at CR/LF, split on spaces only."""
    for stop in ("\r", "\n"):
        line = line.split(stop, 1)[0]
    return [word for word in line.split(" ") if word]


def _int(word: str, default: int = 0) -> int:
    try:
        return int(word)
    except ValueError:
        return default


def _number_setting(name: str, minimum: int | None = None) -> Handler:
    """A handler that sets an integer setting from its argument and always prints it."""

    def handler(state: PenState, args: list[str], now: float) -> str:
        if args:
            value = _int(args[0])
            if minimum is not None:
                value = max(value, minimum)
            setattr(state.settings, name, value)
            _sync(state)
        value = getattr(state.settings, name)
        return f"{int(value)}\n"

    return handler


def _grow_setting(name: str) -> Handler:
    """A handler for a table size that can only grow (``clients_max``, ``conn_max``)."""

    def handler(state: PenState, args: list[str], now: float) -> str:
        if args:
            value = max(getattr(state.settings, name), _int(args[0]))
            setattr(state.settings, name, value)
            _sync(state)
        return f"{getattr(state.settings, name)}\n"

    return handler


_GROW_CONN_MAX = _grow_setting("conn_max")


def _conn_max(state: PenState, args: list[str], now: float) -> str:
    """``conn_max [N]``: grow -x; clients waiting for a slot go on at once."""
    reply = _GROW_CONN_MAX(state, args, now)
    if args:
        state.hooks.conn_max_changed()
    return reply


def _sync(state: PenState) -> None:
    """Push settings that the tables keep a copy of."""
    settings = state.settings
    state.table.blacklist_time = settings.blacklist
    state.clients.tracking = settings.tracking
    state.clients.resize(settings.clients_max)


def _acl_index(word: str) -> int:
    index = _int(word, -1)
    return index if 0 <= index < ACL_COUNT else 0


def _acl(state: PenState, args: list[str], now: float) -> str:
    if len(args) < 3:
        return ""
    index = _int(args[0], -1)
    if not 0 <= index < ACL_COUNT:
        return ""
    try:
        entry = parse_entry(args[1:])
    except PenError as exc:
        return f"{exc}\n"
    defined = state.acl_defined
    if defined is not None and index not in defined:
        # A config file defines the lists it names: re-reading it on HUP replaces them
        # instead of appending the same entries again (pen duplicated them).
        defined.add(index)
        state.acls.clear(index)
    state.acls.add(index, entry)
    return ""


def _acl_setting(name: str) -> Handler:
    def handler(state: PenState, args: list[str], now: float) -> str:
        if args:
            setattr(state.settings, name, _acl_index(args[0]))
        return f"{getattr(state.settings, name)}\n"

    return handler


def _server(state: PenState, args: list[str], now: float) -> str:
    """``server N key value ...``: change one backend, growing the table as needed.

    Every value is checked before anything changes, so a bad address or port answers an
    error line and leaves the server as it was (pen applied the keys before it).
    """
    if not args or _int(args[0], -1) < 0:
        return ""
    index = int(args[0])
    udp = state.settings.udp
    changes: dict[str, int | str] = {}
    address: str | None = None
    blacklist: int | None = None
    words = args[1:]
    try:
        for key, value in zip(words[::2], words[1::2], strict=False):
            if key == "address":
                address = value
            elif key == "port":
                changes["port"] = parse_port(value, "port", udp)
            elif key == "blacklist":
                blacklist = _int(value)
            elif key in SERVER_NUMBERS:
                changes[SERVER_NUMBERS[key]] = _int(value)
        if address is not None:
            changes["family"], changes["address"] = resolve_host(address, 0, udp)
    except PenError as exc:
        return f"server {index}: {exc}\n"
    server = state.table.grow(index)
    for field, setting in changes.items():
        setattr(server, field, setting)
    if blacklist is not None:
        state.table.set_blacklist(server, blacklist, now)
    return ""


SERVER_NUMBERS = {"acl": "acl", "hard": "hard", "weight": "weight", "prio": "prio", "max": "maxc"}
"""``server N`` keys that take a number, and the Server field each sets."""


def _servers(state: PenState, args: list[str], now: float) -> str:
    """One line per backend; byte counts include the connections still open, as pen's."""
    live = state.hooks.live_traffic().by_server
    lines = []
    for i, s in enumerate(state.table.servers):
        sx, rx = live.get(i, (0, 0))
        lines.append(f"{i} addr {s.address} port {s.port} conn {s.conns} max {s.maxc} "
                     f"hard {s.hard} weight {s.weight} prio {s.prio} sx {s.sx + sx} "
                     f"rx {s.rx + rx}\n")
    return "".join(lines)


def _mode(state: PenState, args: list[str], now: float) -> str:
    words = [name if getattr(state.settings, name) else f"no {name}" for name in MODE_FLAGS]
    return " ".join(words) + "\n"


def _recent(state: PenState, args: list[str], now: float) -> str:
    seconds = _int(args[0], 300) if args else 300
    live = state.hooks.live_traffic().by_client
    lines = []
    for c in state.clients.recent(now, seconds):
        sx, rx = live.get(c.address, (0, 0))
        lines.append(f"{c.address} connects {c.connects} sx {c.sx + sx} rx {c.rx + rx}\n")
    return "".join(lines)


def _log(state: PenState, args: list[str], now: float) -> str:
    """``log [FILE|HOST:PORT]``: switch pen.log; if the new target cannot be opened the old
    one stays open and keeps logging."""
    if args:
        try:
            state.hooks.reopen_log(args[0])
        except (OSError, ValueError) as exc:
            return f"log: cannot open {args[0]}: {_reason(exc)}\n"
        state.settings.log = args[0]
    return f"{state.settings.log}\n" if state.settings.log else ""


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _web_stats(state: PenState, args: list[str], now: float) -> str:
    if args:
        state.settings.web_stats = args[0]
    return f"{state.settings.web_stats}\n" if state.settings.web_stats else ""


def _status(state: PenState, args: list[str], now: float) -> str:
    try:
        page = state.hooks.status_page()
    except OSError as exc:
        return f"status: cannot write {state.settings.web_stats}: {_reason(exc)}\n"
    return page if page is not None else "Unable to create webstats\n"


def _exit(state: PenState, args: list[str], now: float) -> str:
    if not state.settings.exit_enabled:
        return "Exit is not enabled; restart with -X flag\n"
    state.hooks.request_exit()
    return ""


def _debug(state: PenState, args: list[str], now: float) -> str:
    """``debug [N]``: set or show the debug level; the running balancer logs at it now."""
    reply = _debug_level(state, args, now)
    if args:
        state.hooks.debug_changed()
    return reply


_debug_level = _number_setting("debug", 0)


def _pid(state: PenState, args: list[str], now: float) -> str:
    return f"{state.hooks.pid()}\n"


def _control(state: PenState, args: list[str], now: float) -> str:
    return f"{state.settings.control}\n" if state.settings.control else "\n"


def _include(state: PenState, args: list[str], now: float) -> str:
    """``include FILE``: run FILE's commands. As in pen, their replies are not the answer
    (pen prints them on its stdout; here they go to the debug log); only a file that cannot
    be read or an include loop is answered."""
    if not args:
        return ""
    try:
        replies = run_file(state, args[0], now)
    except (OSError, PenError) as exc:
        return f"include: {_reason(exc) if isinstance(exc, OSError) else exc}\n"
    for reply in replies:
        logger.debug("%s: %s", args[0], reply.rstrip("\n"))
    return ""


def _check_includes(path: str, chain: list[str]) -> None:
    """Follow the ``include`` lines below ``path``; a file met again on the way is a loop.

    :raises IncludeLoop: a loop, or nesting deeper than INCLUDE_DEPTH.
    :raises OSError: a file cannot be read.
    """
    real = os.path.realpath(path)
    chain = [*chain, path]
    if real in (os.path.realpath(p) for p in chain[:-1]):
        raise IncludeLoop(chain)
    if len(chain) > INCLUDE_DEPTH:
        raise IncludeLoop(chain, f"nested deeper than {INCLUDE_DEPTH}")
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        includes = [w[1] for w in map(split_line, lines) if len(w) > 1 and w[0] == "include"]
    for inner in includes:
        _check_includes(inner, chain)


def run_file(state: PenState, path: str, now: float) -> list[str]:
    """Run a config file (-F, HUP, ``include``) and collect its non-empty replies.

    The include tree is checked first, so a loop runs no line at all. The ``acl`` lines of
    one run redefine the lists they name (see ``_acl``).

    :raises IncludeLoop: the file includes itself.
    :raises OSError: the file (or one it includes) cannot be read.
    """
    _check_includes(path, [])
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        text = lines.read()
    outer = state.acl_defined is None
    if outer:
        state.acl_defined = set()
    try:
        return run_lines(state, text.splitlines(), now)
    finally:
        if outer:
            state.acl_defined = None


def _no(state: PenState, args: list[str], now: float) -> str:
    """``no X``: clear a flag, an ACL, the log or the status file."""
    if not args:
        return ""
    name = args[0]
    if name in FLAGS:
        setattr(state.settings, FLAGS[name], False)
    elif name == "acl" and len(args) > 1 and 0 <= _int(args[1], -1) < ACL_COUNT:
        state.acls.clear(int(args[1]))
    elif name == "log":
        state.hooks.reopen_log(None)
        state.settings.log = None
    elif name == "transparent":
        state.settings.transparent = False
    elif name == "web_stats":
        state.settings.web_stats = None
    return ""


def _idle_timeout(state: PenState, args: list[str], now: float) -> str:
    """``idle_timeout [N]``: close connections idle for N s (0: never); pen's reply text."""
    if args:
        state.settings.idle_timeout = max(0, _int(args[0]))
    return f"Idle timeout: {state.settings.idle_timeout} seconds\n"


def _always_on(state: PenState, args: list[str], now: float) -> str:
    """``tcp_nodelay``: accepted; asyncio and uvloop set TCP_NODELAY on every TCP socket."""
    return ""


def _flag(name: str) -> Handler:
    def handler(state: PenState, args: list[str], now: float) -> str:
        setattr(state.settings, name, True)
        return ""

    return handler


def _float_setting(name: str) -> Handler:
    def handler(state: PenState, args: list[str], now: float) -> str:
        if args:
            setattr(state.settings, name, max(1.0, float(_int(args[0], 1))))
        return f"{int(getattr(state.settings, name))}\n"

    return handler


def _connection_number(args: list[str]) -> int:
    """pen's N for ``close``/``connection``: missing or not a number means 0."""
    return _int(args[0]) if args else 0


def _in_range(state: PenState, number: int) -> bool:
    return 0 <= number < state.settings.conn_max


def _close(state: PenState, args: list[str], now: float) -> str:
    """``close [N]``: cut connection N (both sides), as pen's slot numbers go."""
    number = _connection_number(args)
    if not _in_range(state, number):
        return f"Connection {number} out of range\n"
    state.hooks.close_connection(number)
    return f"Forcibly closing connection {number}\n"


def _connection(state: PenState, args: list[str], now: float) -> str:
    """``connection [N]``: pen's five-line view of one slot (free slots show zeros)."""
    number = _connection_number(args)
    if not _in_range(state, number):
        return f"Connection {number} out of range\n"
    info = state.hooks.connection(number) or ConnectionInfo()
    return (
        f"Connection {number}:\nstate = {info.state}\n"
        f"downfd = {info.downfd}, upfd = {info.upfd}\n"
        f"client = {info.client}, server = {info.server}\npend = {info.pend}\n"
    )


def _socket(state: PenState, args: list[str], now: float) -> str:
    fd = _connection_number(args)
    return f"Socket {fd} belongs to connection {state.hooks.socket_owner(fd)}\n"


def _idlers(state: PenState, args: list[str], now: float) -> str:
    """``idlers [N]``: keep N idle upstream connections; shows open/wanted."""
    if args:
        state.settings.idlers = max(0, _int(args[0]))
    return f"Idlers: {state.hooks.idlers_changed()}/{state.settings.idlers}\n"


def _tcp_fastclose(state: PenState, args: list[str], now: float) -> str:
    if not args:
        return "do_cmd: ignoring tcp_fastclose without argument\n"
    state.settings.tcp_fastclose = args[0] if args[0] in FASTCLOSE else "off"
    return ""


def _source(state: PenState, args: list[str], now: float) -> str:
    """``source IP``: bind upstream connects to IP; one this host cannot bind is refused
    (pen took any address and then failed every connect)."""
    if not args:
        return f"{state.settings.source}\n" if state.settings.source else ""
    try:
        address = str(ipaddress.ip_address(args[0]))
    except ValueError:
        return f"unable to set source address to '{args[0]}'"
    error = state.hooks.source_error(address)
    if error is not None:
        return f"unable to set source address to '{args[0]}': {error}\n"
    state.settings.source = address
    return ""


def _transparent(state: PenState, args: list[str], now: float) -> str:
    """``transparent``: connect upstream from the client's address (IPv4 clients)."""
    error = state.hooks.transparent_error()
    if error is not None:
        return f"transparent: {error}\n"
    state.settings.transparent = True
    return ""


def _listen(state: PenState, args: list[str], now: float) -> str:
    """``listen [ADDR]``: move the listener to ADDR, then show LISTEN as pen does.

    The running balancer opens ADDR before it closes the old listener, so an address that
    is bad or in use answers an error line and the old one goes on serving (pen exited).
    The address already served is left alone: a HUP re-reading ``listen`` in -F changes
    nothing.
    """
    if args:
        settings = state.settings
        try:
            spec = parse_listen(args[0], settings.udp)
            if spec != settings.listen:
                state.hooks.move_listener(spec)
        except (OSError, PenError) as exc:
            return f"listen: {_reason(exc)}\n"
        settings.listen = spec
        settings.listen_text = args[0]
    return f"{state.settings.listen_text}\n"


def _tarpit_acl(state: PenState, args: list[str], now: float) -> str:
    if args:
        state.settings.tarpit_acl = _int(args[0], -1)
    return f"tarpit_acl = {state.settings.tarpit_acl}"


def _write(state: PenState, args: list[str], now: float) -> str:
    """``write [FILE]``: save the running configuration (default: the -F file)."""
    path = args[0] if args else state.settings.config_file
    if not path:
        return "write: no file given and no -F file\n"
    text = render_config(state, path, now)
    try:
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(text)
    except OSError as exc:
        return f"write: cannot write {path}: {_reason(exc)}\n"
    return ""


def _unsupported(state: PenState, args: list[str], now: float) -> str:
    """TLS tuning, DSR and the dummy responder: pen-suite does not have them; say so
    rather than accept them silently."""
    return "do_cmd: not supported by this pen\n"


def _no_effect(state: PenState, args: list[str], now: float) -> str:
    """Accepted in silence as pen does, with nothing to change here: the event backend
    (chosen with -P/--loop before the loop starts), ``peek`` (unfinished in pen),
    ``pending_max`` (pen's queue of half-read connections has no counterpart) and
    ``abort_on_error`` (errors here exit with a status)."""
    return ""


HANDLERS: dict[str, Handler] = {
    "abort_on_error": _no_effect,
    "acl": _acl,
    "blacklist": _number_setting("blacklist", 0),
    "client_acl": _acl_setting("client_acl"),
    "clients_max": _grow_setting("clients_max"),
    "conn_max": _conn_max,
    "control": _control,
    "close": _close,
    "connection": _connection,
    "control_acl": _acl_setting("control_acl"),
    "debug": _debug,
    "dsr_if": _unsupported,
    "dsr_ip": _unsupported,
    "dummy": _unsupported,
    "epoll": _no_effect,
    "exit": _exit,
    "idle_timeout": _idle_timeout,
    "idlers": _idlers,
    "include": _include,
    "kqueue": _no_effect,
    "listen": _listen,
    "log": _log,
    "mode": _mode,
    "no": _no,
    "peek": _no_effect,
    "pending_max": _no_effect,
    "pid": _pid,
    "poll": _no_effect,
    "recent": _recent,
    "server": _server,
    "select": _no_effect,
    "servers": _servers,
    "socket": _socket,
    "source": _source,
    "ssl_ciphers": _unsupported,
    "ssl_client_renegotiation_interval": _unsupported,
    "ssl_ocsp_response": _unsupported,
    "ssl_option": _unsupported,
    "ssl_sni_path": _unsupported,
    "status": _status,
    "tarpit_acl": _tarpit_acl,
    "tcp_fastclose": _tcp_fastclose,
    "tcp_nodelay": _always_on,
    "timeout": _float_setting("timeout"),
    "tracking": _number_setting("tracking", 0),
    "transparent": _transparent,
    "web_stats": _web_stats,
    "write": _write,
    **{command: _flag(name) for command, name in FLAGS.items()},
}


def execute(state: PenState, line: str, now: float) -> str:
    """Run one command line and return its reply (pen's ``do_cmd``)."""
    words = split_line(line)
    if not words or words[0].startswith("#"):
        return ""
    handler = HANDLERS.get(words[0])
    if handler is None:
        return f"do_cmd: ignoring command starting with '{words[0]}'\n"
    try:
        return handler(state, words[1:], now)
    except (OSError, PenError, ValueError) as exc:
        # Handlers answer their own errors; this keeps any other from ending a control
        # connection or pen's startup with a traceback.
        return f"{words[0]}: {exc}\n"


def run_lines(state: PenState, lines: Iterable[str], now: float) -> list[str]:
    """Run every line of an -F file or ``include`` and collect the non-empty replies."""
    return [reply for line in lines for reply in [execute(state, line, now)] if reply]
