"""Classifying PTR and forward responses, built with dnspython, no sockets."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rrset

from webresolve import wire
from webresolve.answers import Outcome, classify_ptr, confirms, hostname

DNS_QNAME = dns.name.from_text("1.2.0.192.in-addr.arpa.")
QNAME = wire.labels_of("1.2.0.192.in-addr.arpa")


def message(*records: tuple[str, str, str], rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    msg = dns.message.make_response(dns.message.make_query(DNS_QNAME, "PTR"))
    msg.set_rcode(rcode)
    for owner, rdtype, text in records:
        msg.answer.append(dns.rrset.from_text(owner, 600, "IN", rdtype, text))
    return msg


def reply(msg: dns.message.Message) -> wire.Reply:
    """dnspython's wire bytes read back by ours."""
    asked = msg.question[0]
    labels = tuple(asked.name.labels[:-1])
    return wire.parse_reply(msg.to_wire(), wire.question(labels, asked.rdtype))


def response(*records: tuple[str, str, str], rcode: int = dns.rcode.NOERROR) -> wire.Reply:
    return reply(message(*records, rcode=rcode))


def test_ptr_answer() -> None:
    answer = classify_ptr(response((DNS_QNAME.to_text(), "PTR", "host.example.com.")), QNAME)
    assert (answer.name, answer.outcome, answer.ttl) == (b"host.example.com", Outcome.RESOLVED, 600)


def test_ptr_through_cname_rfc2317() -> None:
    msg = response(
        (DNS_QNAME.to_text(), "CNAME", "1.0/25.2.0.192.in-addr.arpa."),
        ("1.0/25.2.0.192.in-addr.arpa.", "PTR", "classless.example."),
    )
    assert classify_ptr(msg, QNAME).name == b"classless.example"


def test_several_ptrs_pick_the_same_one_every_time() -> None:
    msg = message()
    msg.answer.append(dns.rrset.from_text(DNS_QNAME, 600, "IN", "PTR", "b.Example.", "A.example."))
    assert classify_ptr(reply(msg), QNAME).name == b"a.example"


def test_rcodes() -> None:
    assert classify_ptr(response(rcode=dns.rcode.NXDOMAIN), QNAME).outcome is Outcome.NXDOMAIN
    assert classify_ptr(response(rcode=dns.rcode.SERVFAIL), QNAME).outcome is Outcome.SERVFAIL
    assert classify_ptr(response(rcode=dns.rcode.REFUSED), QNAME).outcome is Outcome.SERVFAIL
    assert classify_ptr(response(), QNAME).outcome is Outcome.NO_ANSWER


def test_ptr_for_another_name_is_no_answer() -> None:
    msg = response(("9.9.9.9.in-addr.arpa.", "PTR", "other.example."))
    assert classify_ptr(msg, QNAME).outcome is Outcome.NO_ANSWER


def test_hostile_names_are_bogus() -> None:
    for target in (
        r"evil\032name.com.",
        r"a\"b.com.",
        r"x\010y.",
        "192.0.2.99.",
        r"a\.b.com.",
        r"\195\188.de.",
    ):
        answer = classify_ptr(response((DNS_QNAME.to_text(), "PTR", target)), QNAME)
        assert (answer.name, answer.outcome) == (None, Outcome.BOGUS), target


def test_outcome_kinds() -> None:
    assert Outcome.TIMEOUT.failed and Outcome.SERVFAIL.failed
    assert not Outcome.NXDOMAIN.failed and Outcome.NXDOMAIN.cacheable
    assert not Outcome.TIMEOUT.cacheable


def test_confirms() -> None:
    name = wire.labels_of("host.example")
    good = response(("host.example.", "A", "192.0.2.1"))
    assert confirms(good, name, "192.0.2.1") == 600
    assert confirms(good, name, "192.0.2.2") is None
    six = response(("host.example.", "AAAA", "2001:db8::1"))
    assert confirms(six, name, "2001:db8::1") == 600
    assert confirms(response(rcode=dns.rcode.NXDOMAIN), name, "192.0.2.1") is None


def test_hostname_from_labels() -> None:
    assert hostname((b"www", b"example", b"com")) == b"www.example.com"
    assert hostname((b"a.b", b"com")) is None
    assert hostname((b"\xc3\xbc", b"de")) is None
    assert hostname((b"192", b"0", b"2", b"1")) is None
