"""The status page and the connection numbering behind ``connection N`` (no sockets)."""

import time

from pen.config import Settings
from pen.conntable import ConnectionTable, LiveTraffic
from pen.servers import Server, ServerTable
from pen.state import PenState
from pen.statuspage import ConnectionRow, render_status

NOW = 1_000_000.0


def test_connection_numbers_reuse_the_lowest_free_slot():
    table: ConnectionTable[str] = ConnectionTable()
    for name in "abcd":
        table.add(name)
    assert [table.number(n) for n in "abcd"] == [0, 1, 2, 3]
    table.discard("b")
    table.discard("c")
    table.add("e")
    table.add("f")
    table.add("g")
    assert (table.number("e"), table.number("f"), table.number("g")) == (1, 2, 4)
    assert table.numbered(1) == "e" and table.numbered(9) is None and table.number("zz") == -1
    assert len(table) == 5 and "a" in table and "b" not in table
    assert [n for n, _ in table.by_number()] == [0, 1, 2, 3, 4]
    table.discard("zz")  # unknown: nothing happens
    assert sorted(table) == ["a", "d", "e", "f", "g"]


def _state():
    servers = ServerTable([Server("127.0.0.1", 8001, sx=10, rx=20),
                           Server("127.0.0.2", 8002), Server("0.0.0.0", 0)],
                          blacklist_time=30)
    state = PenState(Settings(), servers)
    servers.set_blacklist(servers.servers[1], 25, NOW)
    record = state.clients.touch("127.0.0.9", NOW - 7)
    record.server, record.sx, record.rx = 0, 300, 40
    state.clients.touch("<script>", NOW)  # hostile text never reaches the page raw
    return state


def test_status_page_shows_state_traffic_blacklist_and_clients():
    live = [ConnectionRow(0, "127.0.0.9", 0, "open", 5, 6)]
    traffic = LiveTraffic({0: (5, 6)}, {"127.0.0.9": (6, 5)})
    page = render_status(_state(), live, traffic, NOW)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    assert f"<p>Time {stamp}, 3 servers, 0 current</p>" in page
    rows = [line for line in page.splitlines() if line.startswith("<tr><td>")]
    assert rows[0] == ('<tr><td>0</td><td class="text">127.0.0.1</td><td class="text">up</td>'
                       "<td>8001</td><td>0</td><td>0</td><td>0</td><td>15</td><td>26</td>"
                       "<td>0</td><td>0</td></tr>")
    assert '<td class="text">blacklisted, 25 s left</td>' in rows[1]
    assert '<td class="text">unused</td>' in rows[2]
    assert ('<tr><td class="text">127.0.0.9</td><td>7</td><td>0</td><td>1</td><td>306</td>'
            "<td>45</td></tr>") in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "Number of connections: 500 max, 1 used" in page
    assert '<tr><td>0</td><td class="text">127.0.0.9</td><td>0</td>' in page
