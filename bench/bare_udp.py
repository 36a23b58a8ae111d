"""The least a Python UDP relay can do: uvloop DatagramProtocols, round robin, nothing else.

bench_pen.py runs it beside our pen -U as the ceiling of this runtime: one upstream datagram
endpoint per client address (the first datagram of a client chooses the next backend), each
datagram relayed upstream, each reply sent back from the listening socket; no limits, idle
sweep, queue bound, failover, logging or accounting.

    python bench/bare_udp.py PORT HOST:PORT [HOST:PORT ...]
"""

from __future__ import annotations

import asyncio
import itertools
import sys

import uvloop

Address = tuple[str, int]


class Flow(asyncio.DatagramProtocol):
    """One client address and its upstream endpoint; datagrams wait while it opens."""

    def __init__(self, listener: Listener, client: Address) -> None:
        self.listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.held: list[bytes] = []
        self.opening: asyncio.Task[object] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for data in self.held:
            self.transport.sendto(data)  # type: ignore[union-attr]
        self.held.clear()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.listener.transport.sendto(data, self.client)


class Listener(asyncio.DatagramProtocol):
    """The listening endpoint: a flow per client address."""

    def __init__(self, targets: list[Address]) -> None:
        self.targets = itertools.cycle(targets)
        self.flows: dict[Address, Flow] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = Flow(self, addr)
            loop = asyncio.get_running_loop()
            # the flow holds its opening task: the loop keeps only a weak reference
            flow.opening = loop.create_task(loop.create_datagram_endpoint(
                lambda: flow, remote_addr=next(self.targets)))  # type: ignore[arg-type]
        if flow.transport is None:
            flow.held.append(data)
        else:
            flow.transport.sendto(data)


async def serve(port: int, targets: list[Address]) -> None:
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Listener(targets), local_addr=("0.0.0.0", port))
    await asyncio.Event().wait()


def main() -> None:
    port = int(sys.argv[1])
    targets = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[2:])]
    uvloop.run(serve(port, targets))


if __name__ == "__main__":
    main()
