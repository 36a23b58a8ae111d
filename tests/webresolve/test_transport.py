"""Reading replies with dnspython's checks: the right answer, another query's, hostile bytes."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webresolve.transport import NotTheAnswer, read_reply, render, truncated

QNAME = "1.2.0.192.in-addr.arpa."


def exchange() -> tuple[dns.message.Message, bytes]:
    """A PTR query and the wire bytes of its (compressed) answer."""
    query = dns.message.make_query(QNAME, "PTR")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(QNAME, 60, "IN", "PTR", "host.example."))
    return query, response.to_wire()


LABEL = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789-", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=6).map(".".join)


@given(NAMES, st.sampled_from(["PTR", "A", "AAAA"]), st.integers(0, 0xFFFF))
def test_render_is_dnspythons_to_wire(name: str, qtype: str, qid: int) -> None:
    query = dns.message.make_query(name + ".", qtype, id=qid)
    assert render(query) == query.to_wire()


def test_render_refuses_what_it_does_not_render() -> None:
    with pytest.raises(ValueError):
        render(dns.message.make_query(QNAME, "PTR", use_edns=0))
    with pytest.raises(ValueError):
        render(dns.message.make_query(QNAME, "PTR", flags=0))


def test_the_answer_is_read() -> None:
    query, data = exchange()
    reply = read_reply(data, query)
    assert reply.id == query.id and not truncated(reply)
    assert reply.answer[0][0].to_text() == "host.example."


def test_question_case_does_not_matter() -> None:
    query, data = exchange()
    assert read_reply(data[:12] + data[12:30].upper() + data[30:], query).answer


def test_other_query_or_not_a_response_is_not_the_answer() -> None:
    query, data = exchange()
    other = dns.message.make_query("9.2.0.192.in-addr.arpa.", "PTR", id=query.id)
    with pytest.raises(NotTheAnswer):
        read_reply(data, other)
    with pytest.raises(NotTheAnswer):
        read_reply(query.to_wire(), query)
    forward = dns.message.make_query(QNAME, "A", id=query.id)
    with pytest.raises(NotTheAnswer):
        read_reply(data, forward)


def test_truncated_flag() -> None:
    query = dns.message.make_query(QNAME, "PTR")
    response = dns.message.make_response(query)
    response.flags |= dns.flags.TC
    assert truncated(read_reply(response.to_wire(), query))


def test_compression_loop_is_malformed() -> None:
    query, data = exchange()
    end = len(query.to_wire())
    looping = data[:end] + b"\xc0" + bytes([end]) + data[end + 2 :]
    with pytest.raises(dns.exception.FormError):
        read_reply(looping, query)


@settings(max_examples=400)
@given(st.data())
def test_hostile_bytes_raise_only_dns_errors(data: st.DataObject) -> None:
    """Whatever arrives, the transport sees a reply, NotTheAnswer or a DNSException (which
    it maps to a failed attempt): never IndexError, struct.error or UnicodeError."""
    query, valid = exchange()
    mutated = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (bytes(mutated), bytes(mutated[:cut]), data.draw(st.binary(max_size=80))):
        try:
            read_reply(candidate, query)
        except (NotTheAnswer, dns.exception.DNSException):
            pass
