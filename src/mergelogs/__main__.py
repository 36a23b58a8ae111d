"""``python -m mergelogs``."""

from mergelogs.cli import main

main()
