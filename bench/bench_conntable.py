"""What numbering connections for the control port (``connection N``, ``close N``) costs the
data path: ConnectionTable add+discard against the plain set it replaced, interleaved and
repeated, per connection.

    .venv/bin/python bench/bench_conntable.py [--open 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from pen.conntable import ConnectionTable


class _Conn:
    __slots__ = ()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=500, help="connections open at once")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    conns = [_Conn() for _ in range(args.open)]

    def churn(make: Callable[[], set[_Conn] | ConnectionTable[_Conn]]) -> Callable[[], None]:
        """Open every connection, then close every one, on a fresh table."""

        def run() -> None:
            table = make()
            for conn in conns:
                table.add(conn)
            for conn in conns:
                table.discard(conn)

        return run

    plain, numbered = churn(set), churn(ConnectionTable)
    best = {"set": float("inf"), "ConnectionTable": float("inf")}
    for _ in range(args.rounds):
        for name, fn in (("set", plain), ("ConnectionTable", numbered)):
            best[name] = min(best[name], min(timeit.repeat(fn, number=200, repeat=3)) / 200)
    per = {name: seconds / args.open * 1e9 for name, seconds in best.items()}
    for name, ns in per.items():
        print(f"{name:16} {ns:6.0f} ns per connection (add + discard)")
    print(f"extra per connection: {per['ConnectionTable'] - per['set']:.0f} ns "
          f"(ratio {per['ConnectionTable'] / per['set']:.1f}x)")


if __name__ == "__main__":
    main()
