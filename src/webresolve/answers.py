"""What a DNS reply means for one address: pure classification, no sockets.

Works on the answer records :mod:`webresolve.messages` decodes with dnspython (owner
names as ``dns.name.Name``, data as ``dns.rdtypes`` PTR/CNAME/A/AAAA objects).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import cast

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from webresolve.messages import Record, Reply
from webresolve.names import canonical_address, valid_hostname

_MAX_CHAIN = 8


class Outcome(enum.Enum):
    """How the lookup of one distinct address ended."""

    RESOLVED = "resolved"
    NXDOMAIN = "nxdomain"
    NO_ANSWER = "no answer"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    BOGUS = "bogus name"
    UNVERIFIED = "unverified"

    @property
    def failed(self) -> bool:
        """True when the DNS did not answer (as opposed to answering 'no name')."""
        return self in (Outcome.SERVFAIL, Outcome.TIMEOUT)

    @property
    def cacheable(self) -> bool:
        """True when the outcome is an answer worth remembering across runs."""
        return not self.failed


@dataclass(frozen=True, slots=True)
class Answer:
    """The name an address gets (None keeps the address), why, and for how long it holds."""

    name: bytes | None
    outcome: Outcome
    ttl: float = 0.0


def final_records(reply: Reply, qname: dns.name.Name, rdtype: int) -> list[Record]:
    """The IN ``rdtype`` records for ``qname``, following CNAMEs (RFC 2317 classless PTRs)."""
    name = qname
    for _ in range(_MAX_CHAIN):
        records = [r for r in reply.answers if r.rdclass == dns.rdataclass.IN and r.owner == name]
        found = [r for r in records if r.rdtype == rdtype]
        if found:
            return found
        alias = next((r for r in records if r.rdtype == dns.rdatatype.CNAME), None)
        if alias is None:
            return []
        name = cast(CNAME, alias.rdata).target
    return []


def named(text: str, ttl: float = 0.0) -> Answer:
    """What a name found anywhere (a PTR, a ``--cache`` row, a ``--hosts`` line) gives its
    address: RESOLVED with it (one final dot dropped) if it passes the host-name rule, else
    BOGUS, so that no source can write into a log what the rule refuses."""
    if not valid_hostname(text):
        return Answer(None, Outcome.BOGUS, ttl)
    return Answer(text.removesuffix(".").encode("ascii"), Outcome.RESOLVED, ttl)


def hostname(name: dns.name.Name, ttl: float = 0.0) -> Answer:
    """The answer the PTR target ``name`` gives, its dotted text in lower case.

    dnspython's text form escapes every byte that is not a plain letter, digit or hyphen
    (a dot inside a label, a space, a quote, a control or non-ASCII byte), so any escape
    makes the name invalid here.
    """
    return named(name.to_text(omit_final_dot=True).lower(), ttl)


def classify_ptr(reply: Reply, qname: dns.name.Name) -> Answer:
    """The answer a PTR reply gives; SERVFAIL for any rcode that is not an answer.

    With several PTR records the smallest name (in DNS order, ignoring case) is taken, so
    that runs agree.
    """
    if reply.rcode == dns.rcode.NXDOMAIN:
        return Answer(None, Outcome.NXDOMAIN)
    if reply.rcode != dns.rcode.NOERROR:
        return Answer(None, Outcome.SERVFAIL)
    records = final_records(reply, qname, dns.rdatatype.PTR)
    if not records:
        return Answer(None, Outcome.NO_ANSWER)
    ttl = float(min(r.ttl for r in records))
    return hostname(min(cast(PTR, r.rdata).target for r in records), ttl)


def confirms(reply: Reply, qname: dns.name.Name, address: str) -> float | None:
    """The TTL of the forward record that points ``qname`` back at ``address``, else None."""
    if reply.rcode != dns.rcode.NOERROR:
        return None
    rtype = dns.rdatatype.AAAA if ":" in address else dns.rdatatype.A
    for record in final_records(reply, qname, rtype):
        if canonical_address(cast(A | AAAA, record.rdata).address.encode()) == address:
            return float(record.ttl)
    return None
