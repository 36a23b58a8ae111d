"""The nightly job end to end on loopback: pen, three web servers, clients, rotation, merge, names.

Run from the checkout (``make demo`` or ``python -m demo``); not installed with the suite.
"""
