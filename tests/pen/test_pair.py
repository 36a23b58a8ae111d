"""The pair's flow control, half-close and the connect driver, with hand-written fakes."""

from __future__ import annotations

import asyncio

import pytest

from pen.connect import Connect
from pen.loops import loop_factory
from pen.tcp import ClientSide, ServerSide


class FakeTransport:
    """Records what a protocol asks of its transport."""

    def __init__(self, can_eof: bool = True):
        self.written = b""
        self.reading = True
        self.eof_written = False
        self.closed = False
        self.can_eof = can_eof

    def write(self, data):
        self.written += data

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True

    def can_write_eof(self):
        return self.can_eof

    def write_eof(self):
        self.eof_written = True

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed


class FakeProxy:
    """The tcp_fastclose switches ProxyState offers the pair."""

    def __init__(self, fastclose: str = "off"):
        self.fastclose_up = fastclose in ("up", "both")
        self.fastclose_down = fastclose in ("down", "both")


def make_pair(fastclose: str = "off"):
    client = ClientSide.__new__(ClientSide)
    ClientSide.__init__(client, proxy=FakeProxy(fastclose))
    client.transport = FakeTransport()
    client.up = FakeTransport()
    client.upstream = ServerSide(client)
    client.upstream.transport = client.up
    return client, client.upstream


def test_slow_client_pauses_the_backend_and_back():
    client, server = make_pair()
    client.pause_writing()
    assert not client.up.reading and client.transport.reading
    client.resume_writing()
    assert client.up.reading


def test_slow_backend_pauses_the_client_and_back():
    client, server = make_pair()
    server.pause_writing()
    assert not client.transport.reading and client.up.reading
    server.resume_writing()
    assert client.transport.reading


def test_backend_resume_does_not_reopen_a_client_that_sent_eof():
    client, server = make_pair()
    server.pause_writing()
    assert client.eof_received() is True
    server.resume_writing()
    assert not client.transport.reading


@pytest.mark.parametrize("fastclose", ["down", "both"])
def test_fastclose_down_closes_both_on_client_eof(fastclose):
    client, server = make_pair(fastclose)
    client.eof_received()
    assert client.up.closed and client.transport.closed and not client.up.eof_written


@pytest.mark.parametrize("fastclose", ["up", "both"])
def test_fastclose_up_closes_both_on_backend_eof(fastclose):
    client, server = make_pair(fastclose)
    server.eof_received()
    assert client.up.closed and client.transport.closed and not client.transport.eof_written


def test_half_close_each_way_then_close():
    client, server = make_pair()
    assert client.eof_received() is True
    assert client.up.eof_written and not client.up.closed and not client.transport.closed
    server.data_received(b"late reply")
    assert client.transport.written == b"late reply"
    assert server.eof_received() is True
    assert client.up.closed and client.transport.closed


def test_backend_eof_first_is_passed_to_the_client():
    client, server = make_pair()
    server.eof_received()
    assert client.transport.eof_written and not client.transport.closed
    client.data_received(b"more")
    assert client.up.written == b"more"


def test_transport_without_half_close_closes_both():
    client, server = make_pair()
    client.transport.can_eof = False
    server.eof_received()
    assert client.transport.closed and client.up.closed


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    def runner(coro):
        with asyncio.Runner(loop_factory=loop_factory(request.param), debug=True) as r:
            return r.run(coro)
    return runner


async def waits_for(future, value):
    await future
    return value


def test_connect_driver_reports_failure_and_cancel(run):
    async def scenario():
        loop = asyncio.get_running_loop()
        results = []
        ok = loop.create_future()
        Connect(waits_for(ok, 1), results.append).start()
        bad = loop.create_future()
        Connect(waits_for(bad, 2), results.append).start()
        never = loop.create_future()
        cancelled = Connect(waits_for(never, 3), results.append)
        cancelled.start()
        assert results == []
        ok.set_result(None)
        bad.set_exception(ConnectionRefusedError())
        cancelled.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        never.set_result(None)
        await asyncio.sleep(0)
        return results

    results = run(scenario())
    # success is the protocol's connection_made: only failures and cancels are reported
    assert len(results) == 2
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[1], ConnectionRefusedError)


class FakeLog:
    active = True

    def __init__(self):
        self.lines = []

    def write(self, client, epoch, server, head):
        self.lines.append(head.split(b"\r\n")[0])


def test_chunks_held_while_connecting_stop_at_a_refused_head():
    from types import SimpleNamespace

    counts = []
    proxy = SimpleNamespace(proxy_protocol=0, log=FakeLog(), scheme="http", http=True,
                            core=SimpleNamespace(settings=SimpleNamespace(http=True)),
                            count=counts.append)
    client = ClientSide(proxy)  # type: ignore[arg-type]
    client.transport = FakeTransport()
    client.address = "127.0.0.2"
    client.upstream = ServerSide(client)
    client.data_received(b"GET /ok HTTP/1.1\r\n\r\n")
    client.data_received(b"POST /bad HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    client.data_received(b"GET /forged HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
    up = FakeTransport()
    client.up = up
    client._start(up)
    assert up.written.startswith(b"GET /ok HTTP/1.1\r\nX-Forwarded-For: 127.0.0.2\r\n")
    assert b"/bad" not in up.written and b"6.6.6.6" not in up.written and up.closed
    assert client.transport.written.startswith(b"HTTP/1.1 400 ") and client.transport.closed
    assert proxy.log.lines == [b"GET /ok HTTP/1.1"] and counts == ["bad_content_length"]
