"""Classifying PTR and forward responses, built with dnspython, no sockets."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rrset

from webresolve.answers import Outcome, classify_ptr, confirms, hostname
from webresolve.messages import Question, Reply, read_reply

DNS_QNAME = dns.name.from_text("1.2.0.192.in-addr.arpa.")


def message(
    *records: tuple[str, str, str],
    rcode: int = dns.rcode.NOERROR,
    qname: dns.name.Name = DNS_QNAME,
    qtype: str = "PTR",
) -> dns.message.Message:
    msg = dns.message.make_response(dns.message.make_query(qname, qtype))
    msg.set_rcode(rcode)
    for owner, rdtype, text in records:
        msg.answer.append(dns.rrset.from_text(owner, 600, "IN", rdtype, text))
    return msg


def reply(msg: dns.message.Message) -> Reply:
    """dnspython's message as it arrives: rendered, then read back by ours."""
    asked = msg.question[0]
    return read_reply(msg.to_wire(), Question(asked.name, asked.rdtype))


def response(*records: tuple[str, str, str], rcode: int = dns.rcode.NOERROR) -> Reply:
    return reply(message(*records, rcode=rcode))


def test_ptr_answer() -> None:
    answer = classify_ptr(response((DNS_QNAME.to_text(), "PTR", "host.example.com.")), DNS_QNAME)
    assert (answer.name, answer.outcome, answer.ttl) == (b"host.example.com", Outcome.RESOLVED, 600)


def test_ptr_through_cname_rfc2317() -> None:
    msg = response(
        (DNS_QNAME.to_text(), "CNAME", "1.0/25.2.0.192.in-addr.arpa."),
        ("1.0/25.2.0.192.in-addr.arpa.", "PTR", "classless.example."),
    )
    assert classify_ptr(msg, DNS_QNAME).name == b"classless.example"


def test_several_ptrs_pick_the_same_one_every_time() -> None:
    msg = message()
    msg.answer.append(dns.rrset.from_text(DNS_QNAME, 600, "IN", "PTR", "b.Example.", "A.example."))
    assert classify_ptr(reply(msg), DNS_QNAME).name == b"a.example"


def test_rcodes() -> None:
    assert classify_ptr(response(rcode=dns.rcode.NXDOMAIN), DNS_QNAME).outcome is Outcome.NXDOMAIN
    assert classify_ptr(response(rcode=dns.rcode.SERVFAIL), DNS_QNAME).outcome is Outcome.SERVFAIL
    assert classify_ptr(response(rcode=dns.rcode.REFUSED), DNS_QNAME).outcome is Outcome.SERVFAIL
    assert classify_ptr(response(), DNS_QNAME).outcome is Outcome.NO_ANSWER


def test_ptr_for_another_name_is_no_answer() -> None:
    msg = response(("9.9.9.9.in-addr.arpa.", "PTR", "other.example."))
    assert classify_ptr(msg, DNS_QNAME).outcome is Outcome.NO_ANSWER


def test_hostile_names_are_bogus() -> None:
    for target in (
        r"evil\032name.com.",
        r"a\"b.com.",
        r"x\010y.",
        "192.0.2.99.",
        r"a\.b.com.",
        r"\195\188.de.",
    ):
        answer = classify_ptr(response((DNS_QNAME.to_text(), "PTR", target)), DNS_QNAME)
        assert (answer.name, answer.outcome) == (None, Outcome.BOGUS), target


def test_outcome_kinds() -> None:
    assert Outcome.TIMEOUT.failed and Outcome.SERVFAIL.failed
    assert not Outcome.NXDOMAIN.failed and Outcome.NXDOMAIN.cacheable
    assert not Outcome.TIMEOUT.cacheable


HOST = dns.name.from_text("host.example.")


def forward(*records: tuple[str, str, str], qtype: str = "A") -> Reply:
    return reply(message(*records, qname=HOST, qtype=qtype))


def test_confirms() -> None:
    good = forward(("host.example.", "A", "192.0.2.1"))
    assert confirms(good, HOST, "192.0.2.1") == 600
    assert confirms(good, HOST, "192.0.2.2") is None
    six = forward(("host.example.", "AAAA", "2001:db8::1"), qtype="AAAA")
    assert confirms(six, HOST, "2001:db8::1") == 600
    alias = forward(
        ("host.example.", "CNAME", "real.example."), ("real.example.", "A", "192.0.2.1")
    )
    assert confirms(alias, HOST, "192.0.2.1") == 600
    other = forward(("elsewhere.example.", "A", "192.0.2.1"))
    assert confirms(other, HOST, "192.0.2.1") is None
    missing = reply(message(rcode=dns.rcode.NXDOMAIN, qname=HOST))
    assert confirms(missing, HOST, "192.0.2.1") is None


def test_cname_loop_is_no_answer() -> None:
    loop = response(
        (DNS_QNAME.to_text(), "CNAME", "a.example."),
        ("a.example.", "CNAME", DNS_QNAME.to_text()),
    )
    assert classify_ptr(loop, DNS_QNAME).outcome is Outcome.NO_ANSWER


def test_hostname_from_names() -> None:
    assert hostname(dns.name.from_text("WWW.example.com.")).name == b"www.example.com"
    assert hostname(dns.name.Name([b"a.b", b"com", b""])).name is None
    assert hostname(dns.name.Name([b"\xc3\xbc", b"de", b""])).name is None
    assert hostname(dns.name.from_text("192.0.2.1.")).name is None
    assert hostname(dns.name.root).name is None
