"""The exceptions webresolve raises: one root, each carrying what went wrong where."""

from __future__ import annotations


class WebresolveError(Exception):
    """Root of every error webresolve raises on purpose."""


class SpecError(WebresolveError, ValueError):
    """A command-line value (nameserver, hosts line) that cannot be understood."""

    def __init__(self, what: str, text: str, reason: str) -> None:
        super().__init__(what, text, reason)
        self.what = what
        self.text = text
        self.reason = reason

    def __str__(self) -> str:
        return f"bad {self.what} {self.text!r}: {self.reason}"


class HostsFileError(WebresolveError, ValueError):
    """A line of a ``--hosts`` file that is not ``ADDRESS NAME [ALIAS ...]``."""

    def __init__(self, path: str, lineno: int, reason: str) -> None:
        super().__init__(path, lineno, reason)
        self.path = path
        self.lineno = lineno
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.reason}"


class CacheError(WebresolveError):
    """The ``--cache`` database cannot be opened, read or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"cache {self.path}: {self.reason}"


class LookupFailed(WebresolveError):
    """One attempt got no usable answer from a server (refused, garbage, unreachable)."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(server, reason)
        self.server = server
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.server}: {self.reason}"


class LookupTimeout(LookupFailed):
    """One attempt saw no answer within its timeout."""
