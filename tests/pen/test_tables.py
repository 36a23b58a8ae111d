"""ServerTable counters, blacklist and limits; ClientTable LRU and expiry (no sockets)."""

from pen.clients import ClientTable
from pen.servers import ABUSE, EMERGENCY, NO_SERVER, Server, ServerTable


def table(*limits):
    return ServerTable([Server(f"10.0.0.{i}", 80, maxc=m, hard=h) for i, (m, h) in
                        enumerate(limits, 1)], blacklist_time=30)


def test_blacklist_lasts_the_blacklist_time():
    t = table((0, 0))
    s = t.servers[0]
    t.fail(s, 1000.0)
    assert not t.available(0, 1029.0)
    assert t.blacklisted(s, 1029.9)
    assert not t.blacklisted(s, 1030.0)
    t.fail(s, 1000.0)
    t.succeed(s)
    assert t.available(0, 1000.0)


def test_server_blacklist_command_sets_exact_seconds():
    t = table((0, 0))
    s = t.servers[0]
    t.set_blacklist(s, 100, 1000.0)
    assert t.blacklisted(s, 1099.0)
    assert not t.blacklisted(s, 1100.0)
    t.set_blacklist(s, 0, 1000.0)
    assert not t.blacklisted(s, 1000.0)


def test_soft_and_hard_limits():
    s = Server("10.0.0.1", 80, maxc=1, hard=2)
    assert ServerTable.admits(s, sticky=False)
    s.conns = 1
    assert not ServerTable.admits(s, sticky=False)
    assert ServerTable.admits(s, sticky=True)
    s.conns = 2
    assert not ServerTable.admits(s, sticky=True)
    assert ServerTable.admits(Server("x", 1, conns=99), sticky=False)


def test_hard_not_above_max_gives_no_allowance():
    s = Server("10.0.0.1", 80, maxc=2, hard=1, conns=2)
    assert not ServerTable.admits(s, sticky=True)


def test_get_special_indices_and_grow():
    t = ServerTable([Server("a", 1)], emergency=Server("e", 1), abuse=Server("b", 1))
    assert t.get(EMERGENCY).address == "e"
    assert t.get(ABUSE).address == "b"
    assert t.get(NO_SERVER) is None
    assert t.get(5) is None
    grown = t.grow(2)
    assert len(t) == 3 and grown.unused and t.servers[1].unused


def test_unused_slot_is_not_available():
    t = ServerTable([Server("0.0.0.0", 80), Server("10.0.0.1", 0), Server("10.0.0.1", 80)])
    assert [t.available(i, 0.0) for i in range(3)] == [False, False, True]


def test_client_table_remembers_and_counts():
    clients = ClientTable(size=4)
    r = clients.touch("127.0.0.2", 10.0)
    assert r.server == NO_SERVER and r.connects == 1
    r.server = 1
    again = clients.touch("127.0.0.2", 11.0)
    assert again is r and again.server == 1 and again.connects == 2 and again.last == 11.0


def test_client_table_reuses_least_recently_seen():
    clients = ClientTable(size=2)
    clients.touch("a", 1.0).server = 0
    clients.touch("b", 2.0).server = 1
    clients.touch("a", 3.0)
    clients.touch("c", 4.0)
    assert clients.get("b") is None
    assert clients.get("a").server == 0
    assert len(clients) == 2


def test_tracking_expiry_forgets_the_server():
    clients = ClientTable(size=8, tracking=60)
    clients.touch("a", 100.0).server = 1
    assert clients.touch("a", 160.0).server == 1
    assert clients.touch("a", 221.0).server == NO_SERVER


def test_ipv6_clients_are_compared_on_the_whole_address():
    clients = ClientTable()
    clients.touch("2001:db8::1", 1.0).server = 0
    assert clients.touch("2001:db8::2", 1.0).server == NO_SERVER


def test_resize_only_grows_and_recent():
    clients = ClientTable(size=4)
    clients.resize(2)
    assert clients.size == 4
    clients.touch("a", 1.0)
    clients.touch("b", 500.0)
    assert [c.address for c in clients.recent(600.0, 300)] == ["b"]
