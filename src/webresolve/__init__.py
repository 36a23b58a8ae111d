"""webresolve: replace client addresses in access logs with host names, many lookups at once."""

__version__ = "0.1.0"
