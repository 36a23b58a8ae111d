"""The DNS wire format of the one kind of exchange we make: a question out, its reply in.

Design notes
------------
dnspython builds and parses any DNS message, at about 0.3 ms of CPU per PTR exchange on
this machine; a log resolver makes thousands of the same small exchange, and that cost,
not the network, bounds its speed. This module only builds a one-question query and reads
a reply's header, checks that its question section is the one we sent, and decodes the
answer records we use (PTR, CNAME, A, AAAA). It is sans-IO: bytes in, values out.

Reading is defensive, as replies come from the network: every offset is bounds-checked,
compression pointers must point backwards (so they cannot loop), a name is at most 255
bytes, and any violation raises :class:`WireError`, never ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from webresolve.errors import WebresolveError

A = 1
CNAME = 5
PTR = 12
AAAA = 28
IN = 1
NOERROR = 0
SERVFAIL = 2
NXDOMAIN = 3
REFUSED = 5

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_QR = 0x8000
_TC = 0x0200
_RD = 0x0100
_MAX_NAME = 255
_MAX_JUMPS = 64

Labels = tuple[bytes, ...]


class WireError(WebresolveError, ValueError):
    """A reply that is not a well-formed DNS message."""


class QuestionMismatch(WireError):
    """A well-formed reply to some other question (late, duplicate or forged)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record: owner (lower-case labels), type, TTL, and its decoded data:
    target labels for PTR/CNAME, address text for A/AAAA, None for anything else."""

    owner: Labels
    rtype: int
    ttl: int
    value: Labels | str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """The parts of a reply a resolver acts on."""

    rcode: int
    truncated: bool
    answers: tuple[Record, ...]


def labels_of(name: str) -> Labels:
    """The labels of a dotted ASCII name (trailing dot optional).

    :raises WireError: an empty or over-long label, or a name over 255 bytes.
    """
    labels = tuple(label.encode("ascii") for label in name.rstrip(".").split("."))
    _check_labels(labels)
    return labels


def _check_labels(labels: Labels) -> None:
    if any(not 0 < len(label) < 64 for label in labels):
        raise WireError(f"bad label in {labels!r}")
    if sum(len(label) + 1 for label in labels) + 1 > _MAX_NAME:
        raise WireError("name longer than 255 bytes")


def question(labels: Labels, qtype: int) -> bytes:
    """The question section for ``labels``/``qtype``/IN, as sent and as echoed back."""
    _check_labels(labels)
    name = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    return name + struct.pack("!HH", qtype, IN)


def query(qid: int, asked: bytes) -> bytes:
    """A recursive query with id ``qid`` and question section ``asked``."""
    return _HEADER.pack(qid, _RD, 1, 0, 0, 0) + asked


def parse_reply(data: bytes, asked: bytes) -> Reply:
    """Decode a reply to the question ``asked`` (see :func:`question`).

    :raises QuestionMismatch: a valid reply whose question is not ``asked``.
    :raises WireError: anything malformed.
    """
    if len(data) < _HEADER.size:
        raise WireError("reply shorter than a header")
    _, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if not flags & _QR:
        raise WireError("not a reply")
    end = _HEADER.size + len(asked)
    if qdcount != 1 or data[_HEADER.size : end].lower() != asked.lower():
        raise QuestionMismatch("reply to another question")
    answers = []
    offset = end
    for _ in range(ancount):
        record, offset = _record(data, offset)
        answers.append(record)
    return Reply(flags & 0x000F, bool(flags & _TC), tuple(answers))


def _record(data: bytes, offset: int) -> tuple[Record, int]:
    owner, offset = read_name(data, offset)
    if offset + _RR.size > len(data):
        raise WireError("record header past the end")
    rtype, rclass, ttl, length = _RR.unpack_from(data, offset)
    start = offset + _RR.size
    stop = start + length
    if stop > len(data):
        raise WireError("record data past the end")
    value: Labels | str | None = None
    if rclass == IN and rtype in (PTR, CNAME):
        value, used = read_name(data, start)
        if used != stop:
            raise WireError("name does not fill its record")
    elif rclass == IN and (rtype, length) in ((A, 4), (AAAA, 16)):
        value = str(ipaddress.ip_address(data[start:stop]))
    owner = tuple(label.lower() for label in owner)
    return Record(owner, rtype, min(ttl, 0x7FFFFFFF), value), stop


def read_name(data: bytes, offset: int) -> tuple[Labels, int]:
    """The name at ``offset`` (following compression) and the offset just after it.

    :raises WireError: truncated, over-long, or with a pointer that does not go backwards.
    """
    labels: list[bytes] = []
    size = 1
    after = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise WireError("name past the end")
        length = data[offset]
        if length == 0:
            return tuple(labels), (offset + 1 if after < 0 else after)
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("pointer past the end")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target >= offset or jumps >= _MAX_JUMPS:
                raise WireError("compression pointer does not go backwards")
            if after < 0:
                after = offset + 2
            offset = target
            jumps += 1
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        label = data[offset + 1 : offset + 1 + length]
        size += length + 1
        if len(label) != length or size > _MAX_NAME:
            raise WireError("label past the end or name too long")
        labels.append(label)
        offset += 1 + length
