"""--metrics: the text page parsed by prometheus_client, alone and scraped from a running pen."""

from __future__ import annotations

import socket
import time

from pen.config import ServerSpec, Settings
from pen.logsink import PenLog
from pen.metrics import escape_label, render, response
from pen.state import PenState

from .helpers import UdpResponder, fetch, free_port, samples, scrape, udp_ask


def by_server(found, name: str) -> dict[str, float]:
    return {dict(labels)["server"]: value for (n, labels), value in found.items() if n == name}


def test_render_parses_with_every_family_and_escaped_labels():
    settings = Settings(servers=[ServerSpec("127.0.0.1", 80), ServerSpec('/tmp/a"b\\c\nd', 0)],
                        emergency=ServerSpec("127.0.0.9", 81), clients_max=64)
    core = PenState.from_settings(settings)
    first, odd = core.table.servers
    first.conns, first.total, first.sx, first.rx, first.failures = 2, 7, 2**60 + 1, 345, 3
    core.table.fail(odd, 1000.0)
    core.table.selections.hash = 5
    core.clients.touch("10.0.0.1", 1000.0)
    log = PenLog(None)
    log.written, log.dropped = 9, 1
    found = samples(render(core, log, 1010.0))
    key = (("address", "127.0.0.1"), ("port", "80"), ("server", "0"))
    assert found["pen_server_open_connections", key] == 2
    assert found["pen_server_connections_total", key] == 7
    assert found["pen_server_sent_bytes_total", key] == 2**60 + 1
    assert found["pen_server_received_bytes_total", key] == 345
    assert found["pen_server_connect_failures_total", key] == 3
    odd_key = (("address", '/tmp/a"b\\c\nd'), ("port", "0"), ("server", "1"))
    assert found["pen_server_blacklisted", odd_key] == 1
    assert found["pen_server_blacklisted_until_seconds", odd_key] == 1030.0
    assert by_server(found, "pen_server_blacklisted") == {"0": 0, "1": 1, "emergency": 0}
    assert found["pen_selections_total", (("algorithm", "hash"),)] == 5
    assert found["pen_selections_total", (("algorithm", "roundrobin"),)] == 0
    assert found["pen_clients", ()] == 1 and found["pen_clients_max", ()] == 64
    assert found["pen_log_lines_total", ()] == 9 and found["pen_log_dropped_total", ()] == 1


def test_whole_integers_are_written_exactly():
    core = PenState.from_settings(Settings(servers=[ServerSpec("127.0.0.1", 80)]))
    core.table.servers[0].sx = 12345678901234567
    assert "} 12345678901234567\n" in render(core, PenLog(None), 0.0)


def test_escape_label():
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_response_answers_get_metrics_only():
    assert response(b"GET /metrics HTTP/1.1\r\nHost: x", lambda: "m 1\n").startswith(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4")
    assert response(b"GET /metrics?x=1 HTTP/1.1", lambda: "").startswith(b"HTTP/1.1 200")
    for head in (b"GET / HTTP/1.1", b"POST /metrics HTTP/1.1", b"GET /metricsx HTTP/1.0", b""):
        assert response(head, lambda: "").startswith(b"HTTP/1.1 404 Not Found\r\n")


def settle(port: int, done, timeout: float = 10.0) -> dict:
    """Scrape until ``done(found)`` holds (bytes are counted as connections close)."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(port)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_scraped_during_traffic(tmp_path, backends, pen):
    a, b = backends("A", "B")
    dead = free_port()
    port, metrics = free_port(), free_port()
    log = tmp_path / "pen.log"
    pen(["-l", log, "-c", "100", "-b", "600", "--metrics", f"127.0.0.1:{metrics}", port,
         a.spec, b.spec, f"127.0.0.1:{dead}"])
    holder = socket.create_connection(("127.0.0.1", port), timeout=10,
                                      source_address=("127.0.0.9", 0))
    silent = socket.create_connection(("127.0.0.1", metrics), timeout=10)  # never says a thing
    sent = {"A": 0, "B": 0}
    received = {"A": 0, "B": 0}
    try:
        for round_ in range(3):
            for client in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
                request = b"GET /r%d HTTP/1.0\r\nHost: t\r\n\r\n" % round_
                reply = fetch(port, request, client)
                name = reply.rpartition(b"\r\n\r\n")[2].decode()
                sent[name] += len(request)
                received[name] += len(reply)
        # The held client is in the middle of a connection: it counts as open.
        found = settle(metrics, lambda f: sum(by_server(f, "pen_server_open_connections")
                                              .values()) == 1)
        assert sum(by_server(found, "pen_server_open_connections").values()) == 1
    finally:
        holder.close()
        silent.close()
    found = settle(metrics, lambda f: sum(by_server(f, "pen_server_open_connections").values())
                   == 0 and sum(by_server(f, "pen_server_sent_bytes_total").values())
                   == sum(sent.values()))
    index = {"A": "0", "B": "1"}
    for name in ("A", "B"):
        assert by_server(found, "pen_server_sent_bytes_total")[index[name]] == sent[name]
        assert by_server(found, "pen_server_received_bytes_total")[index[name]] == received[name]
    totals = by_server(found, "pen_server_connections_total")
    assert totals["0"] + totals["1"] == 13 and totals["2"] == 1  # 12 fetches and the holder
    assert by_server(found, "pen_server_connect_failures_total") == {"0": 0, "1": 0, "2": 1}
    assert by_server(found, "pen_server_blacklisted") == {"0": 0, "1": 0, "2": 1}
    until = by_server(found, "pen_server_blacklisted_until_seconds")
    assert until["0"] == 0 and time.time() < until["2"] <= time.time() + 600  # -b 600
    assert found["pen_selections_total", (("algorithm", "roundrobin"),)] == 5  # new clients
    assert found["pen_selections_total", (("algorithm", "sticky"),)] == 8
    assert found["pen_clients", ()] == 5 and found["pen_clients_max", ()] == 100
    assert found["pen_log_lines_total", ()] == 12 == len(log.read_bytes().splitlines())
    assert found["pen_log_dropped_total", ()] == 0


def test_other_requests_404_and_idle_scrapers_are_capped(backends, pen):
    (a,) = backends("A")
    port, metrics = free_port(), free_port()
    pen(["--metrics", str(metrics), port, a.spec])
    assert fetch(metrics, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 404 Not Found")
    idle = [socket.create_connection(("127.0.0.1", metrics), timeout=10) for _ in range(40)]
    try:
        # Past the cap new scrapers are closed at once; traffic goes on all the same.
        with socket.create_connection(("127.0.0.1", metrics), timeout=10) as extra:
            try:
                extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass  # refused with a reset: nothing answered either way
        assert fetch(port, b"GET / HTTP/1.0\r\n\r\n").endswith(b"A")
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the idle ones are gone: scrapes work again
        try:
            if fetch(metrics, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200"):
                break
        except ConnectionResetError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_udp_flows_are_counted(pen):
    responder = UdpResponder("U")
    try:
        port, metrics = free_port(socket.SOCK_DGRAM), free_port()
        pen(["-U", "--metrics", f"127.0.0.1:{metrics}", port, responder.spec])
        for client in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):  # a new flow each
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flow:
                flow.bind((client, 0))
                assert {udp_ask(port, b"hello", sock=flow) for _ in range(3)} == {b"U"}
        found = scrape(metrics)
    finally:
        responder.stop()
    assert by_server(found, "pen_server_connections_total") == {"0": 3}  # one per flow
    assert by_server(found, "pen_server_received_bytes_total") == {"0": 9 * len(b"U:hello")}
    assert found["pen_selections_total", (("algorithm", "roundrobin"),)] == 2  # new clients
    assert found["pen_selections_total", (("algorithm", "sticky"),)] == 1
