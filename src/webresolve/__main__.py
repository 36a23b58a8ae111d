"""``python -m webresolve``: the webresolve command."""

from webresolve.cli import main

main()
