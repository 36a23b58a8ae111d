"""``python -m pen``: the same as the ``pen`` console script."""

from .cli import main

main()
