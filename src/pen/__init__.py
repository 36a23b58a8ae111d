"""pen: an asyncio TCP/UDP load balancer compatible with pen 0.34's command line.

Importing the package is cheap: only the pure pen.log format lives at this level,
so mergelogs can read pen.log without pulling in the balancer.
"""

__version__ = "0.1.0"
