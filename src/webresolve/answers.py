"""What a DNS response means for one address: pure classification, no sockets."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

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


def final_rrset(
    response: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    """The ``rdtype`` records for ``qname``, following CNAMEs (RFC 2317 classless PTRs)."""
    name = qname
    for _ in range(_MAX_CHAIN):
        for rrset in response.answer:
            if rrset.name == name and rrset.rdtype == rdtype:
                return rrset
        cname = next(
            (r for r in response.answer if r.name == name and r.rdtype == dns.rdatatype.CNAME),
            None,
        )
        if cname is None:
            return None
        name = cname[0].target
    return None


def classify_ptr(response: dns.message.Message, qname: dns.name.Name) -> Answer:
    """The answer a PTR response gives; SERVFAIL for any rcode that is not an answer."""
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Answer(None, Outcome.NXDOMAIN)
    if rcode != dns.rcode.NOERROR:
        return Answer(None, Outcome.SERVFAIL)
    rrset = final_rrset(response, qname, dns.rdatatype.PTR)
    if rrset is None or len(rrset) == 0:
        return Answer(None, Outcome.NO_ANSWER)
    target = sorted(rdata.target for rdata in rrset)[0]
    text = _plain_text(target)
    if text is None or not valid_hostname(text):
        return Answer(None, Outcome.BOGUS, rrset.ttl)
    return Answer(text.encode("ascii"), Outcome.RESOLVED, rrset.ttl)


def _plain_text(name: dns.name.Name) -> str | None:
    """The name without its root dot, or None when a label holds non-ASCII or a dot."""
    labels = name.labels[:-1] if name.is_absolute() else name.labels
    if any(b"." in label for label in labels):
        return None
    try:
        return b".".join(labels).decode("ascii")
    except UnicodeDecodeError:
        return None


def confirms(response: dns.message.Message, qname: dns.name.Name, address: str) -> float | None:
    """The TTL of the forward record that points ``qname`` back at ``address``, else None."""
    if response.rcode() != dns.rcode.NOERROR:
        return None
    rdtype = dns.rdatatype.AAAA if ":" in address else dns.rdatatype.A
    rrset = final_rrset(response, qname, rdtype)
    if rrset is None:
        return None
    if any(canonical_address(rdata.address.encode()) == address for rdata in rrset):
        return float(rrset.ttl)
    return None
