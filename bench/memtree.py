"""Run a command; print its wall time and the peak resident size of its whole process tree.

``/usr/bin/time`` reports one process; a merge with worker processes needs the tree.

    python bench/memtree.py mergelogs -p pen.log -o out 10.0.0.1:access_log.host1 ...

The command's standard output is discarded (use its ``-o``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_mergelogs import timed


def main() -> int:
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    seconds, peak_kb, code = timed(sys.argv[1:])
    sys.stderr.write(f"{seconds:.2f} s wall, peak RSS of the process tree {peak_kb / 1024:.0f} MB,"
                     f" exit {code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
