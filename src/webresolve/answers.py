"""What a DNS reply means for one address: pure classification of dnspython messages, no sockets.

The reply given here has already been checked by :mod:`webresolve.transport` to answer the
question we asked (``Message.is_response``), so its question section is ours; dnspython's
``resolve_chaining`` follows CNAMEs from it (RFC 2317 classless PTRs) and gives the TTL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import cast

import dns.message
import dns.name
import dns.rcode
import dns.rrset
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from webresolve.names import canonical_address, valid_hostname


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


def final_rrset(reply: dns.message.Message) -> tuple[dns.rrset.RRset | None, float]:
    """The records of the asked type for the asked name, following CNAMEs, and their TTL
    (the smallest along the chain); None when the reply holds none or the chain is too long.
    """
    if not isinstance(reply, dns.message.QueryMessage):
        return None, 0.0
    try:
        chain = reply.resolve_chaining()
    except dns.message.ChainTooLong:
        return None, 0.0
    return chain.answer, float(chain.minimum_ttl)


def hostname(name: dns.name.Name) -> bytes | None:
    """The dotted text of ``name`` if it is a valid host name, else None.

    dnspython's text form escapes every byte that is not a plain letter, digit or hyphen
    (a dot inside a label, a space, a quote, a control or non-ASCII byte), so any escape
    makes the name invalid here.
    """
    text = name.to_text(omit_final_dot=True).lower()
    if not valid_hostname(text):
        return None
    return text.encode("ascii")


def classify_ptr(reply: dns.message.Message) -> Answer:
    """The answer a PTR reply gives; SERVFAIL for any rcode that is not an answer.

    With several PTR records the smallest name (in DNS order, ignoring case) is taken, so
    that runs agree.
    """
    rcode = reply.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Answer(None, Outcome.NXDOMAIN)
    if rcode != dns.rcode.NOERROR:
        return Answer(None, Outcome.SERVFAIL)
    rrset, ttl = final_rrset(reply)
    if not rrset:
        return Answer(None, Outcome.NO_ANSWER)
    name = hostname(min(cast(PTR, rdata).target for rdata in rrset))
    if name is None:
        return Answer(None, Outcome.BOGUS, ttl)
    return Answer(name, Outcome.RESOLVED, ttl)


def confirms(reply: dns.message.Message, address: str) -> float | None:
    """The TTL of the forward (A/AAAA) reply if it points back at ``address``, else None."""
    if reply.rcode() != dns.rcode.NOERROR:
        return None
    rrset, ttl = final_rrset(reply)
    for rdata in rrset or ():
        if canonical_address(cast(A | AAAA, rdata).address.encode()) == address:
            return ttl
    return None
