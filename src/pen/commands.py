"""pen's command interpreter (penctl, -F files, -o/-O and ``include``): one line in, reply text out.

A line is cut at the first CR or LF and split on spaces only, as pen does. Each command has
one handler chosen from a table; a handler gets the state, the words after the command name
and ``now``, and returns the reply (often empty). ``no X`` switches a flag off or clears a
setting. Unknown commands answer pen's "ignoring" message so scripts see the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .acl import ACL_COUNT, parse_entry
from .config import parse_port, resolve_host
from .errors import PenError
from .state import PenState

Handler = Callable[[PenState, list[str], float], str]

FLAGS = {
    "ascii": "ascii",
    "hash": "hash",
    "http": "http",
    "prio": "prio",
    "roundrobin": "roundrobin",
    "stubborn": "stubborn",
    "weight": "weight",
}
"""Commands that switch a boolean setting on (``no CMD`` switches it off)."""

MODE_FLAGS = ("hash", "roundrobin", "stubborn", "weight", "prio")



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
        state.acls.add(index, parse_entry(args[1:]))
    except PenError as exc:
        return f"{exc}\n"
    return ""


def _acl_setting(name: str) -> Handler:
    def handler(state: PenState, args: list[str], now: float) -> str:
        if args:
            setattr(state.settings, name, _acl_index(args[0]))
        return f"{getattr(state.settings, name)}\n"

    return handler


def _server(state: PenState, args: list[str], now: float) -> str:
    """``server N key value ...``: change one backend, growing the table as needed."""
    if not args or _int(args[0], -1) < 0:
        return ""
    server = state.table.grow(int(args[0]))
    words = args[1:]
    while len(words) >= 2:
        key, value, words = words[0], words[1], words[2:]
        if key == "address":
            try:
                server.family, server.address = resolve_host(value, server.port, state.settings.udp)
            except PenError:
                return ""
        elif key == "port":
            try:
                server.port = parse_port(value, "port", state.settings.udp)
            except PenError:
                server.port = 0
        elif key == "blacklist":
            state.table.set_blacklist(server, _int(value), now)
        elif key in ("acl", "hard", "weight", "prio"):
            setattr(server, key, _int(value))
        elif key == "max":
            server.maxc = _int(value)
    return ""


def _servers(state: PenState, args: list[str], now: float) -> str:
    """One line per backend; byte counts grow when a connection closes."""
    return "".join(
        f"{i} addr {s.address} port {s.port} conn {s.conns} max {s.maxc} hard {s.hard} "
        f"weight {s.weight} prio {s.prio} sx {s.sx} rx {s.rx}\n"
        for i, s in enumerate(state.table.servers)
    )


def _mode(state: PenState, args: list[str], now: float) -> str:
    words = [name if getattr(state.settings, name) else f"no {name}" for name in MODE_FLAGS]
    return " ".join(words) + "\n"


def _recent(state: PenState, args: list[str], now: float) -> str:
    seconds = _int(args[0], 300) if args else 300
    return "".join(
        f"{c.address} connects {c.connects} sx {c.sx} rx {c.rx}\n"
        for c in state.clients.recent(now, seconds)
    )


def _log(state: PenState, args: list[str], now: float) -> str:
    if args:
        state.settings.log = args[0]
        state.hooks.reopen_log()
    return f"{state.settings.log}\n" if state.settings.log else ""


def _web_stats(state: PenState, args: list[str], now: float) -> str:
    if args:
        state.settings.web_stats = args[0]
    return f"{state.settings.web_stats}\n" if state.settings.web_stats else ""


def _status(state: PenState, args: list[str], now: float) -> str:
    page = state.hooks.status_page()
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
    if not args:
        return ""
    try:
        with open(args[0], encoding="utf-8", errors="surrogateescape") as lines:
            return "".join(run_lines(state, lines, now))
    except OSError as exc:
        return f"include: {exc}\n"


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
        state.settings.log = None
        state.hooks.reopen_log()
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


HANDLERS: dict[str, Handler] = {
    "acl": _acl,
    "blacklist": _number_setting("blacklist", 0),
    "client_acl": _acl_setting("client_acl"),
    "clients_max": _grow_setting("clients_max"),
    "conn_max": _grow_setting("conn_max"),
    "control": _control,
    "control_acl": _acl_setting("control_acl"),
    "debug": _debug,
    "exit": _exit,
    "idle_timeout": _idle_timeout,
    "include": _include,
    "log": _log,
    "mode": _mode,
    "no": _no,
    "pid": _pid,
    "recent": _recent,
    "server": _server,
    "servers": _servers,
    "status": _status,
    "tcp_nodelay": _always_on,
    "timeout": _float_setting("timeout"),
    "tracking": _number_setting("tracking", 0),
    "web_stats": _web_stats,
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
    return handler(state, words[1:], now)


def run_lines(state: PenState, lines: Iterable[str], now: float) -> list[str]:
    """Run every line of an -F file or ``include`` and collect the non-empty replies."""
    return [reply for line in lines for reply in [execute(state, line, now)] if reply]
