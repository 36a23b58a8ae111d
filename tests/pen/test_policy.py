"""Selection rules of spec section 3 as pure functions (no sockets)."""

import pytest

from pen.acl import Acls, parse_entry
from pen.clients import ClientRecord
from pen.config import Settings
from pen.policy import (
    by_prio,
    by_weight,
    failover_order,
    hash_key,
    initial_server,
    round_robin,
    try_server,
)
from pen.servers import ABUSE, EMERGENCY, NO_SERVER, Server, ServerTable


def make_table(n, **kw):
    return ServerTable([Server(f"10.0.0.{i + 1}", 80) for i in range(n)], **kw)


def pick(t, settings, address="127.0.0.1", port=40000, server=NO_SERVER, acls=None):
    return initial_server(t, settings, acls or Acls(), ClientRecord(address, server), port, 0.0)


@pytest.mark.parametrize(
    ("address", "port", "rr", "key"),
    [
        ("127.0.0.1", 0, False, 0x0100007F),
        ("10.0.2.15", 0, False, 0x0F02000A),
        ("127.0.0.1", 0x1234, True, 0x0100007F ^ 0x3412),
        ("2001:db8::7", 0, False, 7),
        ("", 0, False, 0),
    ],
)
def test_hash_key_is_c_pens_number(address, port, rr, key):
    assert hash_key(address, port, rr) == key


def test_hash_mode_127_0_0_1_goes_to_server_1_of_2():
    assert pick(make_table(2), Settings(hash=True)) == 1


def test_round_robin_starts_at_server_1_and_skips_blacklisted():
    t = make_table(3)
    assert [round_robin(t, 0.0) for _ in range(4)] == [1, 2, 0, 1]
    assert round_robin(ServerTable(), 0.0) == NO_SERVER
    t.fail(t.servers[2], 0.0)
    assert [round_robin(t, 1.0) for _ in range(3)] == [0, 1, 0]
    for s in t.servers:
        t.fail(s, 0.0)
    assert round_robin(t, 1.0) == NO_SERVER


def test_tracking_returns_remembered_server_unless_roundrobin():
    t = make_table(3)
    assert pick(t, Settings(), server=2) == 2
    assert pick(t, Settings(roundrobin=True), server=2) == 1


def test_prio_picks_lowest_available_prio():
    t = make_table(3)
    for s, prio in zip(t.servers, (5, 1, 1), strict=True):
        s.prio = prio
    assert by_prio(t, 0.0) == 1
    t.fail(t.servers[1], 0.0)
    assert by_prio(t, 1.0) == 2


def test_weight_picks_least_load_and_never_weight_zero():
    t = make_table(3)
    assert by_weight(t, 0.0) == NO_SERVER
    t.servers[0].weight, t.servers[1].weight = 1, 3
    assert by_weight(t, 0.0) == 0
    t.servers[0].conns = 1
    t.servers[1].conns = 2
    assert by_weight(t, 0.0) == 1
    assert pick(t, Settings(weight=True)) == 1


def test_try_server_refusals():
    t = make_table(2)
    acls = Acls()
    client = ClientRecord("127.0.0.2", 0)
    assert try_server(t, 0, client, acls, 0.0) is t.servers[0]
    assert try_server(t, NO_SERVER, client, acls, 0.0) is None
    assert try_server(t, EMERGENCY, client, acls, 0.0) is None
    t.servers[0].maxc, t.servers[0].hard, t.servers[0].conns = 1, 2, 1
    assert try_server(t, 0, client, acls, 0.0) is t.servers[0]
    assert try_server(t, 0, ClientRecord("127.0.0.3", 1), acls, 0.0) is None
    acls.add(3, parse_entry(["permit", "127.0.0.3"]))
    t.servers[1].acl = 3
    assert try_server(t, 1, client, acls, 0.0) is None
    assert try_server(t, 1, ClientRecord("127.0.0.3"), acls, 0.0) is t.servers[1]
    t.fail(t.servers[1], 0.0)
    assert try_server(t, 1, ClientRecord("127.0.0.3"), acls, 1.0) is None


def test_failover_order_scans_after_the_failed_server_then_emergency():
    assert list(failover_order(2, 4, False)) == [3, 0, 1, EMERGENCY]
    assert list(failover_order(0, 1, False)) == [EMERGENCY]
    assert list(failover_order(NO_SERVER, 3, False)) == [EMERGENCY]
    assert list(failover_order(1, 3, True)) == []
    assert list(failover_order(ABUSE, 3, False)) == []
    assert list(failover_order(EMERGENCY, 3, False)) == []


def test_denied_client_goes_to_abuse_or_nowhere():
    acls = Acls()
    acls.add(1, parse_entry(["permit", "127.0.0.1"]))
    settings = Settings(client_acl=1)
    t = make_table(2, abuse=Server("10.9.9.9", 80))
    assert pick(t, settings, address="10.0.2.15", acls=acls) == ABUSE
    assert pick(t, settings, address="127.0.0.1", acls=acls) == 1
    assert pick(make_table(2), settings, address="10.0.2.15", acls=acls) == NO_SERVER


def test_acl_rules():
    acls = Acls()
    assert acls.permits(0, "1.2.3.4")
    acls.add(0, parse_entry(["deny", "10.1.2.3", "255.0.0.0"]))
    assert not acls.permits(0, "10.9.9.9")
    assert acls.permits(0, "11.0.0.1")
    acls.add(2, parse_entry(["permit", "::1/128"]))
    assert acls.permits(2, "::1")
    assert not acls.permits(2, "::2")
    assert not acls.permits(2, "127.0.0.1")
    assert acls.permits(2, "")
    acls.clear(2)
    assert acls.permits(2, "::2")
    with pytest.raises(ValueError):
        parse_entry(["allow", "1.2.3.4"])
    with pytest.raises(ValueError):
        parse_entry(["deny", "1.2.3.400"])
