"""What a DNS reply means for one address: pure classification, no sockets."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from webresolve.names import canonical_address, valid_hostname
from webresolve.wire import AAAA, CNAME, NOERROR, NXDOMAIN, PTR, A, Labels, Record, Reply

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


def final_records(reply: Reply, qname: Labels, rtype: int) -> list[Record]:
    """The ``rtype`` records for ``qname``, following CNAMEs (RFC 2317 classless PTRs)."""
    name = tuple(label.lower() for label in qname)
    for _ in range(_MAX_CHAIN):
        found = [r for r in reply.answers if r.owner == name and r.rtype == rtype]
        if found:
            return found
        alias = next((r for r in reply.answers if r.owner == name and r.rtype == CNAME), None)
        if alias is None or not isinstance(alias.value, tuple):
            return []
        name = tuple(label.lower() for label in alias.value)
    return []


def hostname(labels: Labels) -> bytes | None:
    """The dotted name of ``labels`` if it is a valid host name, else None."""
    if any(b"." in label for label in labels):
        return None
    try:
        text = ".".join(label.decode("ascii") for label in labels)
    except UnicodeDecodeError:
        return None
    if not valid_hostname(text):
        return None
    return text.encode("ascii")


def classify_ptr(reply: Reply, qname: Labels) -> Answer:
    """The answer a PTR reply gives; SERVFAIL for any rcode that is not an answer.

    With several PTR records the smallest name is taken, so that runs agree.
    """
    if reply.rcode == NXDOMAIN:
        return Answer(None, Outcome.NXDOMAIN)
    if reply.rcode != NOERROR:
        return Answer(None, Outcome.SERVFAIL)
    records = [
        (r.ttl, r.value) for r in final_records(reply, qname, PTR) if isinstance(r.value, tuple)
    ]
    if not records:
        return Answer(None, Outcome.NO_ANSWER)
    ttl = min(ttl for ttl, _ in records)
    target = min(tuple(label.lower() for label in value) for _, value in records)
    name = hostname(target)
    if name is None:
        return Answer(None, Outcome.BOGUS, ttl)
    return Answer(name, Outcome.RESOLVED, ttl)


def confirms(reply: Reply, qname: Labels, address: str) -> float | None:
    """The TTL of the forward record that points ``qname`` back at ``address``, else None."""
    if reply.rcode != NOERROR:
        return None
    rtype = AAAA if ":" in address else A
    for record in final_records(reply, qname, rtype):
        if isinstance(record.value, str) and canonical_address(record.value.encode()) == address:
            return float(record.ttl)
    return None
