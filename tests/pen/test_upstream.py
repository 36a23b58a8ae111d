"""Upstream connects with ``keepalive``, ``source`` and ``transparent``, on real loopback
sockets, under asyncio and uvloop."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from pen.config import Settings
from pen.loops import loop_factory
from pen.servers import Server
from pen.upstream import needs_setup, open_upstream, source_error


async def _connect(settings: Settings, client: str) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        transport, _ = await open_upstream(loop, asyncio.Protocol, Server("127.0.0.1", port),
                                           settings, client)
        sock = transport.get_extra_info("socket")
        result = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                  sock.getsockname()[0])
        transport.close()
        return result
    finally:
        server.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    def runner(coro):
        with asyncio.Runner(loop_factory=loop_factory(request.param)) as r:
            return r.run(coro)
    return runner


def test_plain_connect_needs_no_setup(run):
    assert not needs_setup(Settings())
    assert run(_connect(Settings(), "127.0.0.9")) == (0, "127.0.0.1")


def test_keepalive_and_source(run):
    settings = Settings(keepalive=True, source="127.0.0.3")
    assert run(_connect(settings, "127.0.0.9")) == (1, "127.0.0.3")


def test_transparent_binds_to_the_client(run):
    if os.geteuid() != 0:
        pytest.skip("IP_TRANSPARENT needs CAP_NET_ADMIN")
    assert run(_connect(Settings(transparent=True), "127.0.0.9")) == (0, "127.0.0.9")
    # An IPv6 or Unix client cannot be an IPv4 source: the source setting applies instead.
    assert run(_connect(Settings(transparent=True, source="127.0.0.4"), "::1")) == (
        0, "127.0.0.4")


def test_source_error_names_the_reason():
    assert source_error("127.0.0.1") is None
    assert source_error("192.0.2.1") == "Cannot assign requested address"
