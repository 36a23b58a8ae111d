"""Our wire format against dnspython's, and against hostile bytes."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webresolve import wire

LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=6).map(".".join)


@given(NAMES, st.sampled_from([wire.PTR, wire.A, wire.AAAA]), st.integers(0, 0xFFFF))
def test_query_bytes_equal_dnspythons(name: str, qtype: int, qid: int) -> None:
    expected = dns.message.make_query(name + ".", qtype, id=qid, flags=dns.flags.RD).to_wire()
    assert wire.query(qid, wire.question(wire.labels_of(name), qtype)) == expected


@given(NAMES, st.lists(NAMES, min_size=1, max_size=4), st.integers(0, 2**31 - 1))
def test_ptr_reply_parsed_like_dnspython(owner: str, targets: list[str], ttl: int) -> None:
    query = dns.message.make_query(owner + ".", "PTR")
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text_list(owner + ".", ttl, "IN", "PTR", [t + "." for t in targets])
    )
    data = response.to_wire()
    reply = wire.parse_reply(data, wire.question(wire.labels_of(owner), wire.PTR))
    ours = {(r.owner, r.ttl, r.value) for r in reply.answers}
    theirs = {
        (tuple(dns.name.from_text(owner).labels[:-1]), ttl, tuple(rd.target.labels[:-1]))
        for rd in dns.message.from_wire(data).answer[0]
    }
    assert ours == theirs
    assert reply.rcode == 0 and not reply.truncated


def test_addresses_and_other_types() -> None:
    query = dns.message.make_query("h.example.", "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("h.example.", 5, "IN", "A", "192.0.2.1"))
    response.answer.append(dns.rrset.from_text("h.example.", 5, "IN", "AAAA", "2001:db8::1"))
    response.answer.append(dns.rrset.from_text("h.example.", 5, "IN", "TXT", '"hi"'))
    response.flags |= dns.flags.TC
    reply = wire.parse_reply(response.to_wire(), wire.question((b"h", b"example"), wire.A))
    assert [r.value for r in reply.answers] == ["192.0.2.1", "2001:db8::1", None]
    assert reply.truncated


def _valid_reply() -> tuple[bytes, bytes]:
    query = dns.message.make_query("1.2.0.192.in-addr.arpa.", "PTR")
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("1.2.0.192.in-addr.arpa.", 60, "IN", "PTR", "host.example.")
    )
    asked = wire.question(wire.labels_of("1.2.0.192.in-addr.arpa"), wire.PTR)
    return response.to_wire(), asked


def test_question_mismatch_and_not_a_reply() -> None:
    data, asked = _valid_reply()
    other = wire.question(wire.labels_of("9.2.0.192.in-addr.arpa"), wire.PTR)
    with pytest.raises(wire.QuestionMismatch):
        wire.parse_reply(data, other)
    with pytest.raises(wire.WireError, match="not a reply"):
        wire.parse_reply(data[:2] + bytes([data[2] & 0x7F]) + data[3:], asked)
    assert wire.parse_reply(data.upper()[:12] + data[12:], asked)


def test_compression_loops_are_rejected() -> None:
    data, asked = _valid_reply()
    end = 12 + len(asked)
    looping = data[:end] + b"\xc0" + bytes([end]) + data[end + 2 :]
    with pytest.raises(wire.WireError, match="backwards"):
        wire.parse_reply(looping, asked)


def test_bad_names_rejected() -> None:
    with pytest.raises(wire.WireError):
        wire.labels_of("a..b")
    with pytest.raises(wire.WireError):
        wire.labels_of("x" * 64 + ".com")
    with pytest.raises(wire.WireError):
        wire.labels_of(".".join(["abcdefghi"] * 26))


@settings(max_examples=400)
@given(st.data())
def test_hostile_bytes_raise_only_wire_error(data: st.DataObject) -> None:
    valid, asked = _valid_reply()
    mutated = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (bytes(mutated), bytes(mutated[:cut]), data.draw(st.binary(max_size=80))):
        try:
            wire.parse_reply(candidate, asked)
        except wire.WireError:
            pass
