"""The one DNS exchange we make, a question out and its reply in, through dnspython's wire layer.

Design notes
------------
Through ``dns.message`` (``make_query``, ``to_wire``, ``from_wire``, ``is_response``,
``resolve_chaining``) a PTR exchange costs about 0.28 ms of CPU on this machine, twice what
it costs here, and the benchmark missed the issue's goal of 3x jdresolve's speed (1.7-2.2x,
see docs/benchmarks.md): the renderer builds a compression table for a single name, and the
reader files every record into an RRset, hashing each rdata by rendering it again. A log
resolver only needs the answer section of the reply to the question it asked, so here:

- a query is dnspython's own ``make_query`` rendering (taken once, as a template) with
  only the id and the question changed, the question name rendered by ``Name.to_wire``;
- a reply is read with dnspython's ``dns.wire.Parser``: header, question (compared with
  ours, as ``Message.is_response`` does), then each answer record's owner name
  (``get_name``, which follows compression pointers only backwards and bounds names at
  255 bytes) and data (``dns.rdata.from_wire_parser`` restricted to its length: the
  PTR/CNAME/A/AAAA classes of ``dns.rdtypes``). The authority and additional sections
  are not read.

Every malformed byte sequence raises ``dns.exception.DNSException`` (mostly
``FormError``) from dnspython's own checks; :class:`NotTheAnswer` is a well-formed message
that does not answer our question.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.wire

from webresolve.errors import WebresolveError

# What make_query renders between the id and the question: RD, one question, no EDNS.
_HEADER = dns.message.make_query(dns.name.root, dns.rdatatype.PTR).to_wire()[2:12]
_TYPE_CLASS = struct.Struct("!HH")
_MAX_TTL = 0x7FFFFFFF


class NotTheAnswer(WebresolveError):
    """A well-formed message that does not answer our question (late, forged, a query)."""


@dataclass(frozen=True, slots=True)
class Question:
    """What we ask: a name and a type, class IN."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record as dnspython decodes it."""

    owner: dns.name.Name
    rdclass: dns.rdataclass.RdataClass
    rdtype: dns.rdatatype.RdataType
    ttl: int
    rdata: dns.rdata.Rdata


@dataclass(frozen=True, slots=True)
class Reply:
    """The parts of a reply a resolver acts on."""

    rcode: dns.rcode.Rcode
    truncated: bool
    answers: tuple[Record, ...]


def render(qid: int, question: Question) -> bytes:
    """The query ``dns.message.make_query(question.name, question.rdtype, id=qid)``
    renders, without building a message or a compression table for it."""
    name = question.name.to_wire()
    assert name is not None  # None only when given a file to write to
    return (
        qid.to_bytes(2, "big")
        + _HEADER
        + name
        + _TYPE_CLASS.pack(question.rdtype, dns.rdataclass.IN)
    )


def read_reply(data: bytes, question: Question) -> Reply:
    """The reply in ``data`` to ``question`` (its id is the caller's to check).

    :raises NotTheAnswer: a well-formed message that is not a reply to ``question``.
    :raises dns.exception.DNSException: anything malformed.
    """
    parser = dns.wire.Parser(data)
    _, flags, qdcount, ancount, _, _ = parser.get_struct("!HHHHHH")
    if not flags & dns.flags.QR or dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        raise NotTheAnswer("not a reply to a query")
    if qdcount != 1:
        raise NotTheAnswer("not one question")
    name = parser.get_name(decompress=True)
    rdtype, rdclass = parser.get_struct("!HH")
    if name != question.name or rdtype != question.rdtype or rdclass != dns.rdataclass.IN:
        raise NotTheAnswer("reply to another question")
    answers = tuple(_record(parser) for _ in range(ancount))
    return Reply(dns.rcode.from_flags(flags, 0), bool(flags & dns.flags.TC), answers)


def _record(parser: dns.wire.Parser) -> Record:
    owner = parser.get_name(decompress=True)
    rdtype, rdclass, ttl, length = parser.get_struct("!HHIH")
    rdclass = dns.rdataclass.RdataClass.make(rdclass)
    rdtype = dns.rdatatype.RdataType.make(rdtype)
    with parser.restrict_to(length):
        rdata = dns.rdata.from_wire_parser(rdclass, rdtype, parser)
    return Record(owner, rdclass, rdtype, ttl if ttl <= _MAX_TTL else 0, rdata)
