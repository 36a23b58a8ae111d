"""Our query bytes and reply reading against dnspython's message layer, and hostile bytes."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webresolve.messages import NotTheAnswer, Question, read_reply, render

QNAME = dns.name.from_text("1.2.0.192.in-addr.arpa.")
PTR = Question(QNAME, dns.rdatatype.PTR)
LABEL = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789-", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=6).map(lambda labels: ".".join(labels) + ".")
TYPES = st.sampled_from([dns.rdatatype.PTR, dns.rdatatype.A, dns.rdatatype.AAAA])


@given(NAMES, TYPES, st.integers(0, 0xFFFF))
def test_render_is_make_query_to_wire(name: str, qtype: dns.rdatatype.RdataType, qid: int) -> None:
    expected = dns.message.make_query(name, qtype, id=qid).to_wire()
    assert render(qid, Question(dns.name.from_text(name), qtype)) == expected


@given(NAMES, st.lists(NAMES, min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_ptr_reply_read_as_dnspython_reads_it(owner: str, targets: list[str], ttl: int) -> None:
    response = dns.message.make_response(dns.message.make_query(owner, "PTR"))
    response.answer.append(dns.rrset.from_text_list(owner, ttl, "IN", "PTR", targets))
    response.answer.append(dns.rrset.from_text(owner, 5, "IN", "TXT", '"hi"'))
    data = response.to_wire()
    reply = read_reply(data, Question(dns.name.from_text(owner), dns.rdatatype.PTR))
    theirs = dns.message.from_wire(data)
    ours = {(r.owner, r.rdtype, r.ttl, r.rdata) for r in reply.answers}
    expected = {(rrs.name, rrs.rdtype, rrs.ttl, rd) for rrs in theirs.answer for rd in rrs}
    assert ours == expected
    assert reply.rcode == theirs.rcode() and not reply.truncated


def exchange() -> bytes:
    """The wire bytes of a (compressed) answer to :data:`PTR`."""
    response = dns.message.make_response(dns.message.make_query(QNAME, "PTR"))
    response.answer.append(dns.rrset.from_text(QNAME, 60, "IN", "PTR", "host.example."))
    return response.to_wire()


def test_question_case_does_not_matter() -> None:
    data = exchange()
    assert read_reply(data[:12] + data[12:30].upper() + data[30:], PTR).answers


def test_other_question_or_not_a_reply_is_not_the_answer() -> None:
    data = exchange()
    with pytest.raises(NotTheAnswer):
        read_reply(data, Question(dns.name.from_text("9.2.0.192.in-addr.arpa."), PTR.rdtype))
    with pytest.raises(NotTheAnswer):
        read_reply(data, Question(QNAME, dns.rdatatype.A))
    with pytest.raises(NotTheAnswer):
        read_reply(render(1, PTR), PTR)


def test_truncated_flag_and_rcode() -> None:
    response = dns.message.make_response(dns.message.make_query(QNAME, "PTR"))
    response.flags |= dns.flags.TC
    response.set_rcode(dns.rcode.NXDOMAIN)
    reply = read_reply(response.to_wire(), PTR)
    assert reply.truncated and reply.rcode == dns.rcode.NXDOMAIN and not reply.answers


def test_compression_loop_is_malformed() -> None:
    data = exchange()
    end = len(render(0, PTR))
    looping = data[:end] + b"\xc0" + bytes([end]) + data[end + 2 :]
    with pytest.raises(dns.exception.FormError):
        read_reply(looping, PTR)


@settings(max_examples=400)
@given(st.data())
def test_hostile_bytes_raise_only_dns_errors(data: st.DataObject) -> None:
    """Whatever arrives is a reply, NotTheAnswer or a DNSException (which the transport
    maps to a failed attempt): never IndexError, struct.error or UnicodeError."""
    mutated = bytearray(exchange())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (bytes(mutated), bytes(mutated[:cut]), data.draw(st.binary(max_size=80))):
        try:
            read_reply(candidate, PTR)
        except (NotTheAnswer, dns.exception.DNSException):
            pass
