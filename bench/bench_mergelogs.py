"""Benchmark our mergelogs against Debian's C mergelogs on the same generated farm, in one run.

Speed: our tool merges the whole farm (default 1,000,000 lines, 4 backends, 100 req/s); the C
tool costs O(lines x pen.log entries within +-600 s), about 2,000 lines/s, so it gets the first
``--c-lines`` requests of the same farm (same seed), and ours is timed on that too. Both are
scored with score.py. The C tool runs with TZ=UTC, the only zone where its times are right.

Accuracy matrix (``--matrix``): small farms over 2-8 backends, 10-1000 req/s and 0-5 s skew,
both tools, accuracy and lost/duplicated lines only.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import genlogs
from bench.score import Score, score_file

C_MERGELOGS = "/usr/bin/mergelogs"


@dataclass(slots=True)
class Run:
    """One timed merge, scored once every merge has run (a child forked from a bench process
    holding a scorer's tables would report that memory as its own peak)."""

    tool: str
    lines: int
    seconds: float
    max_rss_kb: int
    returncode: int
    farm: Path
    out: Path
    result: Score | None = None

    def score(self) -> Run:
        """Fill in :attr:`result` (a failed run stays unscored)."""
        if self.returncode == 0:
            truth, pen = self.farm / genlogs.TRUTH_FILE, self.farm / genlogs.PEN_FILE
            self.result = score_file(truth, pen, self.out)
        return self

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        if self.returncode != 0:
            return f"{self.tool:<22} {self.lines:>9,} lines  FAILED (exit {self.returncode})"
        timing = (
            f"{self.tool:<22} {self.lines:>9,} lines {self.seconds:8.2f} s {self.rate:>10,.0f} "
            f"lines/s  RSS {self.max_rss_kb / 1024:6.0f} MB"
        )
        r = self.result
        if r is None:
            return timing + "  (not scored)"
        details = "".join(f"\n    {line}" for line in r.report().splitlines()[-2:])
        return (
            f"{timing}  accuracy {100 * r.accuracy:7.3f}%  "
            f"lost {r.lost}  dup/unknown {r.extra}  shifted {r.shifted}{details}"
        )


def our_command() -> list[str]:
    """Our mergelogs: the console script next to this interpreter, else ``-m mergelogs``."""
    script = Path(sys.executable).parent / "mergelogs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mergelogs"]


def farm_dir(work: Path, farm: genlogs.Farm) -> Path:
    """The farm's directory under ``work``, generated unless the same generator already wrote
    that very farm there."""
    name = f"farm-b{farm.backends}-r{farm.rate:g}-n{farm.requests}-k{farm.skew:g}-s{farm.seed}"
    path = work / name
    done = path / ".complete"
    source = Path(genlogs.__file__).read_bytes()
    stamp = f"{hashlib.sha256(source).hexdigest()} {farm!r}\n"
    if not done.exists() or done.read_text() != stamp:
        started = time.perf_counter()
        genlogs.write_farm(farm, path)
        done.write_text(stamp)
        print(f"generated {path} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def server_args(farm: genlogs.Farm, path: Path) -> list[str]:
    """``address:logfile`` arguments as typed for pen's mergelogs (``[v6]:logfile`` for IPv6,
    which only ours accepts)."""
    args = []
    for backend in range(farm.backends):
        address = farm.address(backend)
        if ":" in address:
            address = f"[{address}]"
        args.append(f"{address}:{path / genlogs.access_file(backend + 1)}")
    return args


def timed(
    command: list[str], env: dict[str, str] | None = None, stdout: Path | None = None
) -> tuple[float, int, int]:
    """Run ``command``: wall seconds, peak resident KB of its whole process tree (our merge
    may run worker processes), exit status."""
    with open(stdout or os.devnull, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, env=env)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss_kb(proc.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    return seconds, peak, proc.returncode


def tree_rss_kb(pid: int) -> int:
    """Resident KB of ``pid`` and its descendants now (0 for a process already gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            total += sum(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            total += sum(tree_rss_kb(int(child)) for child in children.read().split())
    except OSError:
        pass
    return total


def run_ours(farm: genlogs.Farm, path: Path, out: Path) -> Run:
    command = [*our_command(), "-p", str(path / genlogs.PEN_FILE), "-o", str(out)]
    seconds, rss, code = timed([*command, *server_args(farm, path)])
    return Run("ours", farm.requests, seconds, rss, code, path, out)


def run_c(farm: genlogs.Farm, path: Path, out: Path) -> Run:
    command = [C_MERGELOGS, "-p", str(path / genlogs.PEN_FILE), *server_args(farm, path)]
    seconds, rss, code = timed(command, {**os.environ, "TZ": "UTC"}, out)
    return Run("C mergelogs (TZ=UTC)", farm.requests, seconds, rss, code, path, out)


def speed(args: argparse.Namespace) -> None:
    """Ours on the big farm, both on its start; lines/s, the ratio, accuracy."""
    shape = {"backends": args.backends, "rate": args.rate, "skew": args.skew, "seed": args.seed}
    big = genlogs.Farm(requests=args.lines, **shape)
    small = genlogs.Farm(requests=args.c_lines, **shape)
    big_dir, small_dir = farm_dir(args.work, big), farm_dir(args.work, small)
    print(
        f"farm: {args.backends} backends, {args.rate:g} req/s, skew up to {args.skew:g} s, "
        f"seed {args.seed}; C mergelogs gets the first {args.c_lines:,} requests of it"
    )
    runs = [
        run_ours(big, big_dir, args.work / "ours-big.log"),
        run_ours(small, small_dir, args.work / "ours-small.log"),
        run_c(small, small_dir, args.work / "c-small.log"),
    ]
    for run in runs:
        if run is not runs[0] or args.score_big:
            run.score()
        print(run.row(), flush=True)
    if runs[0].rate and runs[2].rate:
        print(
            f"speed ratio ours/C: {runs[0].rate / runs[2].rate:.1f}x "
            f"({args.lines:,} vs {args.c_lines:,} lines); "
            f"same {args.c_lines:,}-line input: {runs[1].rate / runs[2].rate:.1f}x"
        )
    ceiling = run_ceiling(big, big_dir, args.work / "ceiling-big.log")
    print(ceiling.row())
    if ceiling.rate and runs[0].rate:
        print(f"speed ratio ours/ceiling: {runs[0].rate / ceiling.rate:.2f}x")
    pairs = [(runs[0].rate, ceiling.rate)]
    for _ in range(1, args.pairs):
        ours = run_ours(big, big_dir, args.work / "ours-big.log")
        ceiling = run_ceiling(big, big_dir, args.work / "ceiling-big.log")
        pairs.append((ours.rate, ceiling.rate))
        print(f"pair {len(pairs)}: ours {ours.rate:,.0f} lines/s, ceiling {ceiling.rate:,.0f} "
              f"lines/s, ratio {ours.rate / ceiling.rate:.2f}x", flush=True)
    if len(pairs) > 1:
        ours_rates, ceiling_rates = zip(*pairs, strict=True)
        print(f"{len(pairs)} pairs (each ours, then the ceiling): ours best "
              f"{max(ours_rates):,.0f}, median {statistics.median(ours_rates):,.0f} lines/s; "
              f"ceiling best {max(ceiling_rates):,.0f}, median "
              f"{statistics.median(ceiling_rates):,.0f}; median ratio "
              f"{statistics.median(o / c for o, c in pairs):.2f}x")


def run_ceiling(farm: genlogs.Farm, path: Path, out: Path) -> Run:
    """ceiling_mergelogs.py: what CPython does with no real merge (not scored)."""
    script = Path(__file__).with_name("ceiling_mergelogs.py")
    command = [sys.executable, str(script), str(out), str(path / genlogs.PEN_FILE)]
    seconds, rss, code = timed([*command, *server_args(farm, path)])
    return Run("runtime ceiling", farm.requests, seconds, rss, code, path, out)


MATRIX = list(itertools.product((2, 4, 8), (10.0, 100.0, 1000.0), (0.0, 2.0, 5.0)))


def matrix(args: argparse.Namespace) -> None:
    """Accuracy of both tools over the workload matrix, on small farms."""
    print(f"\naccuracy matrix ({args.matrix_lines:,} lines per farm, seed {args.seed})")
    print(
        f"{'backends':>8} {'req/s':>6} {'skew':>5} | {'ours':>9} {'lost+dup':>8} | "
        f"{'C':>9} {'lost+dup':>8}"
    )
    worst = [1.0, 1.0]
    for backends, rate, skew in MATRIX:
        farm = genlogs.Farm(
            backends=backends, rate=rate, requests=args.matrix_lines, skew=skew, seed=args.seed
        )
        path = farm_dir(args.work / "matrix", farm)
        cells = []
        for index, run in enumerate(
            (run_ours(farm, path, path / "ours.log"), run_c(farm, path, path / "c.log"))
        ):
            r = run.score().result
            if r is None:
                cells.append(f"{'FAILED':>9} {'':>8}")
                worst[index] = 0.0
                continue
            worst[index] = min(worst[index], r.accuracy)
            cells.append(f"{100 * r.accuracy:8.3f}% {r.lost + r.extra:>8}")
        print(f"{backends:>8} {rate:>6g} {skew:>5g} | {cells[0]} | {cells[1]}", flush=True)
    print(f"worst accuracy: ours {100 * worst[0]:.3f}%, C {100 * worst[1]:.3f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/pen-bench"),
        help="where farms are generated (and reused) and outputs written",
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--c-lines", type=int, default=50_000)
    parser.add_argument("--backends", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--skew", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-score-big",
        dest="score_big",
        action="store_false",
        help="do not score the big merge (scoring 1M lines takes ~300 MB and ~40 s)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="time ours and the ceiling on the big farm this many times, alternately (the "
        "machine's speed drifts: the median of pairs is steadier than one run)",
    )
    parser.add_argument("--matrix", action="store_true", help="also run the accuracy matrix")
    parser.add_argument("--matrix-only", action="store_true", help="only the accuracy matrix")
    parser.add_argument("--matrix-lines", type=int, default=10_000)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"ours: {' '.join(our_command())}; C: {C_MERGELOGS}")
    if not args.matrix_only:
        speed(args)
    if args.matrix or args.matrix_only:
        matrix(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
