"""The Apache/nginx/lighttpd access-log formats: the one place that knows where fields sit.

Design notes
------------
A merger's hot path needs three things from a line: the instant of ``%t``, where the client
field is, and the request ``%r``. They are found at byte level, never by decoding:

- ``%t`` is the first `` [`` followed by the 26-byte ``DD/Mon/YYYY:HH:MM:SS ±hhmm`` and ``]``.
  Converting a stamp costs a regex and a date check, so each distinct stamp is converted
  once and remembered (a busy log repeats the same stamp for a whole second).
- The client is the first space-separated field, or the second when the first is a
  ``%v:%p`` pair (vhost_combined). The pair is split at its *last* colon, and a first field
  that is itself an IP address (bare IPv6 clients end in ``:digits`` too) is a client.
- ``%r`` is the first quoted string after the stamp; ``\\"`` does not end it. Its escapes
  (Apache ``\\"``, ``\\\\``, ``\\n``..., ``\\xhh``; nginx ``\\xHH``) are undone by :func:`unescape`.

Everything else in a line is opaque bytes that a tool copies unchanged. The formats read
are Apache's common and combined (``%b``), Debian's variants (``%O``) and vhost_combined
(``%v:%p`` first), lighttpd's default and nginx's predefined combined; :func:`line_format`
tells them apart by shape, :func:`apache_escape` and :func:`nginx_escape` are the servers'
escaping, and :class:`StampWriter` writes ``%t`` in a chosen zone, for whatever writes such
lines.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAMP_LEN = 26
MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MONTH_NAMES = {i: m for m, i in MONTHS.items()}
_STAMP = re.compile(rb"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_USABLE = range((dt.date(1, 1, 2).toordinal() - _EPOCH_ORDINAL) * 86400,
                (dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL) * 86400)
"""Instants a stamp may name: a day inside the years 1-9999, so that each can be written in
any zone (offsets stay within a day)."""
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_C_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"v": b"\v"}
_CACHE_MAX = 65536
_UNSEEN = -(2**64)
"""What the stamp cache gives for a stamp not converted yet (compared by identity)."""


@dataclass(slots=True)
class AccessLine:
    """One log line as read, with where its stamp and request are.

    Not frozen: one is built per line on the hot path, where a frozen dataclass's
    ``__init__`` costs twice as much. The client field is located only when asked for.
    """

    raw: bytes
    """The line's bytes, terminator included."""
    epoch: int | None
    """The instant of ``%t`` in epoch seconds; None when the line has no usable stamp."""
    stamp_start: int = -1
    request: bytes | None = None
    """``%r`` exactly as logged (still escaped), None when the line has none."""

    @property
    def client(self) -> bytes:
        """The client field's bytes."""
        start, end = client_span(self.raw)
        return self.raw[start:end]

    def with_client(self, client: bytes) -> bytes:
        """The line with its client field replaced and every other byte kept."""
        return with_client(self.raw, client)


Fields = tuple[int | None, int, bytes | None]
"""What a merger needs of a line: the instant of ``%t`` (None without a usable stamp), where
the stamp starts and ``%r`` as logged (None when the line has none), as in AccessLine."""
_NO_FIELDS: Fields = (None, -1, None)


def stamp_epoch(stamp: bytes) -> int | None:
    """Epoch seconds of a 26-byte ``%t`` stamp, or None if it is not a real instant.

    Locale-proof (English month table) and strict: an impossible date such as 31/Feb,
    a lowercase month or an hour of 24 is None rather than a silently normalised time, and so
    is an instant on the first or last day of the years 1-9999 (no zone could write it).
    """
    match = _STAMP.fullmatch(stamp)
    if match is None:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = match.groups()
    month = MONTHS.get(mon)
    hour, minute, second = int(hh), int(mm), int(ss)
    if month is None or hour > 23 or minute > 59 or second > 60 or int(om) > 59:
        return None
    try:
        days = dt.date(int(year), month, int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == b"-" else 1)
    epoch = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return epoch if epoch in _USABLE else None


def format_stamp(epoch: int, offset_seconds: int = 0) -> bytes:
    """The ``%t`` text (without brackets) of ``epoch`` at a fixed UTC offset."""
    local = dt.datetime.fromtimestamp(epoch + offset_seconds, dt.UTC)
    sign = b"-" if offset_seconds < 0 else b"+"
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)
    return b"%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        local.day,
        _MONTH_NAMES[local.month],
        local.year,
        local.hour,
        local.minute,
        local.second,
        sign,
        hours,
        minutes,
    )


Zone = ZoneInfo | int
"""Where times are written: an IANA zone (its offset changes with DST) or a fixed offset in
seconds."""
_FIXED_ZONE = re.compile(r"([+-])([01]\d|2[0-3])([0-5]\d)")


@lru_cache(maxsize=64)
def parse_zone(spec: str) -> Zone:
    """The zone of an IANA name (``Europe/Paris``) or a fixed ``+hhmm``/``-hhmm``.

    :raises ValueError: ``spec`` is neither.
    """
    fixed = _FIXED_ZONE.fullmatch(spec)
    if fixed is not None:
        sign, hours, minutes = fixed.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60
        return -seconds if sign == "-" else seconds
    try:
        return ZoneInfo(spec)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{spec!r} is neither an IANA time zone nor +hhmm/-hhmm") from None


def zone_offset(epoch: int, zone: Zone) -> int:
    """The UTC offset in seconds that ``zone`` has at the instant ``epoch``."""
    if isinstance(zone, int):
        return zone
    offset = dt.datetime.fromtimestamp(epoch, zone).utcoffset()
    # whole minutes, as %t writes them (the local mean times before ~1900 have seconds)
    return int(offset.total_seconds()) // 60 * 60 if offset else 0


def zone_stamp(epoch: int, zone: Zone) -> bytes:
    """The ``%t`` text (without brackets) of ``epoch`` as a server in ``zone`` writes it."""
    return format_stamp(epoch, zone_offset(epoch, zone))


class StampWriter:
    """Writes instants as ``%t`` text in one zone, each second converted once.

    :param origin: the epoch the instants count from (as in :class:`AccessParser`).
    """

    __slots__ = ("_zone", "_origin", "_stamps")

    def __init__(self, zone: Zone, origin: int = 0) -> None:
        self._zone = zone
        self._origin = origin
        self._stamps: dict[int, bytes] = {}

    def stamp(self, epoch: int) -> bytes:
        """The 26-byte text of ``epoch`` (counted from the origin)."""
        text = self._stamps.get(epoch)
        if text is None:
            if len(self._stamps) >= _CACHE_MAX:
                self._stamps.clear()
            text = self._stamps[epoch] = zone_stamp(epoch + self._origin, self._zone)
        return text


def stamp_offset(stamp: bytes) -> int:
    """The UTC offset in seconds written at the end of a valid stamp."""
    seconds = int(stamp[22:24]) * 3600 + int(stamp[24:26]) * 60
    return -seconds if stamp[21:22] == b"-" else seconds


@lru_cache(maxsize=4096)
def _is_vhost_port(field: bytes) -> bool:
    """True for a ``%v:%p`` field such as ``www.example.com:443``, False for a client."""
    host, sep, port = field.rpartition(b":")
    if not sep or not host or not port.isdigit():
        return False
    try:
        ipaddress.ip_address(field.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return True
    return False


def with_client(line: bytes, client: bytes) -> bytes:
    """``line`` with its client field replaced and every other byte kept."""
    end = line.find(b" ")
    if end > 0 and line.find(b":", 0, end) < 0:  # the common case: a first field of IPv4
        return client + line[end:]
    start, end = client_span(line)
    return line[:start] + client + line[end:]


def with_stamp(line: bytes, start: int, stamp: bytes, client: bytes | None = None) -> bytes:
    """``line`` with the ``%t`` text at ``start`` replaced by ``stamp`` and, when given, its
    client field by ``client``: one copy of the line, every other byte kept."""
    if client is None:
        return b"".join((line[:start], stamp, line[start + STAMP_LEN :]))  # join: one copy
    head, end = 0, line.find(b" ")
    if end <= 0 or line.find(b":", 0, end) >= 0:  # not the common first field of IPv4
        head, end = client_span(line)
    if end > start:  # no real line: a client field running into the stamp changes alone
        return line[:head] + client + line[end:]
    return b"".join((line[:head], client, line[end:start], stamp, line[start + STAMP_LEN :]))


def client_span(line: bytes) -> tuple[int, int]:
    """Where the client field (``%h``) of a line is, skipping a leading ``%v:%p``."""
    end = line.find(b" ")
    if end < 0:
        return 0, len(line.rstrip(b"\r\n"))
    if line.find(b":", 0, end) >= 0 and _is_vhost_port(line[:end]):
        start = end + 1
        stop = line.find(b" ", start)
        return start, stop if stop >= 0 else len(line.rstrip(b"\r\n"))
    return 0, end


def field_span(line: bytes, number: int) -> tuple[int, int] | None:
    """Where the ``number``-th (1-based) space-separated field is; None past the last one."""
    start = 0
    body = len(line.rstrip(b"\r\n"))
    for _ in range(number - 1):
        space = line.find(b" ", start, body)
        if space < 0:
            return None
        start = space + 1
    end = line.find(b" ", start, body)
    return start, end if end >= 0 else body


def request_field(line: bytes, after: int) -> bytes | None:
    """The first quoted string at or after ``after``, escapes kept; None if there is none."""
    open_quote = line.find(b'"', after)
    if open_quote < 0:
        return None
    close = line.find(b'"', open_quote + 1)
    while close > 0 and line[close - 1] == 0x5C:
        backslashes = len(line[open_quote + 1 : close]) - len(
            line[open_quote + 1 : close].rstrip(b"\\")
        )
        if backslashes % 2 == 0:
            break
        close = line.find(b'"', close + 1)
    if close < 0:
        return None
    return line[open_quote + 1 : close]


_QUOTED = rb'"(?:[^"\\]|\\.)*"'
_AFTER_REQUEST = re.compile(rb" \S+ \S+( " + _QUOTED + rb" " + _QUOTED + rb")?(.*)", re.DOTALL)
"""What follows ``%r``: status and size, then referer and agent in combined, then anything."""


def line_format(raw: bytes) -> str | None:
    """The format a line is written in, by its shape: ``common`` or ``combined``, with a
    ``vhost_`` prefix when it starts with ``%v:%p``, or ``custom`` when more fields follow;
    None for a line without stamp, request, status and size. nginx's and Debian's ``%O``
    variants look like ``combined``, and analysers read them as such."""
    open_bracket = raw.find(b" [")
    stamp_end = open_bracket + 2 + STAMP_LEN
    if open_bracket < 0 or raw[stamp_end : stamp_end + 1] != b"]":
        return None
    request = request_field(raw, stamp_end)
    if request is None:
        return None
    after = raw.find(b'"', stamp_end) + len(request) + 2
    tail = _AFTER_REQUEST.fullmatch(raw, after, len(raw.rstrip(b"\r\n")))
    if tail is None:
        return None
    name = "custom" if tail.group(2) else "combined" if tail.group(1) else "common"
    return "vhost_" + name if client_span(raw)[0] > 0 else name


_APACHE_TABLE = [b"\\x%02x" % b if b < 0x20 or b >= 0x7F else bytes([b]) for b in range(256)]
for _code, _text in ((0x22, b'\\"'), (0x5C, b"\\\\"), (0x08, b"\\b"), (0x0A, b"\\n"),
                     (0x0D, b"\\r"), (0x09, b"\\t"), (0x0B, b"\\v")):
    _APACHE_TABLE[_code] = _text
_NGINX_TABLE = [
    b"\\x%02X" % b if b < 0x20 or b >= 0x7F or b in (0x22, 0x5C) else bytes([b]) for b in range(256)
]
_NEEDS_ESCAPE = re.compile(rb"[^\x20\x21\x23-\x5b\x5d-\x7e]")
"""A byte that both servers escape: control, ``"``, ``\\``, DEL or >= 0x80."""


def apache_escape(data: bytes) -> bytes:
    """Escape ``data`` as Apache 2.x ``ap_escape_logitem`` does (lowercase ``\\xhh``)."""
    if _NEEDS_ESCAPE.search(data) is None:
        return data
    return b"".join(_APACHE_TABLE[b] for b in data)


def nginx_escape(data: bytes) -> bytes:
    """Escape ``data`` as nginx ``escape=default`` does (uppercase ``\\xHH``, ``"`` too)."""
    if _NEEDS_ESCAPE.search(data) is None:
        return data
    return b"".join(_NGINX_TABLE[b] for b in data)


def _unescape_one(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code[:1] == b"x" and len(code) == 3:
        return bytes.fromhex(code[1:].decode())
    return _C_ESCAPES.get(code, code)


def unescape(field: bytes) -> bytes:
    """Undo Apache (``\\"``, ``\\\\``, C forms, ``\\xhh``) and nginx (``\\xHH``) escaping."""
    if 92 not in field:  # no backslash: nothing to undo
        return field
    return _ESCAPE.sub(_unescape_one, field)


class AccessParser:
    """Finds the fields of access-log lines, remembering each distinct stamp's instant.

    :param origin: the epoch instants count from (the Unix epoch by default): a merger
        counts from a recent one, so that its seconds stay small ints, which CPython adds
        and compares on its fast paths.
    """

    __slots__ = ("_stamps", "_origin")

    def __init__(self, origin: int = 0) -> None:
        self._stamps: dict[bytes, int | None] = {}
        self._origin = origin

    def epoch_of(self, stamp: bytes) -> int | None:
        """The instant of a 26-byte stamp, converted once per distinct stamp."""
        try:
            return self._stamps[stamp]
        except KeyError:
            if len(self._stamps) >= _CACHE_MAX:
                self._stamps.clear()
            epoch = stamp_epoch(stamp)
            if epoch is not None:
                epoch -= self._origin
            self._stamps[stamp] = epoch
            return epoch

    def parse(self, raw: bytes) -> AccessLine:
        """Locate stamp and request; a line without a valid stamp has epoch None."""
        return AccessLine(raw, *self.fields(raw))

    def fields(self, raw: bytes) -> Fields:
        """The stamp's instant and start and the request of a line, without building a
        record: a merger's hot path keeps them in its own tuples."""
        open_bracket = raw.find(b" [")
        stamp_end = open_bracket + 2 + STAMP_LEN
        if open_bracket < 0 or raw[stamp_end : stamp_end + 1] != b"]":
            return _NO_FIELDS
        stamp = raw[open_bracket + 2 : stamp_end]
        epoch = self._stamps.get(stamp, _UNSEEN)
        if epoch is _UNSEEN:
            epoch = self.epoch_of(stamp)
        if epoch is None:
            return _NO_FIELDS
        return epoch, open_bracket + 2, request_field(raw, stamp_end)
