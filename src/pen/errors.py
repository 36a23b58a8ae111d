"""The balancer's exceptions: one root, structured subclasses, mapped to exit codes in cli.py."""

from __future__ import annotations


class PenError(Exception):
    """Root of every error the balancer raises on purpose."""


class SpecError(PenError, ValueError):
    """A LISTEN, server or ACL spec that cannot be parsed."""

    def __init__(self, kind: str, text: str, reason: str) -> None:
        super().__init__(kind, text, reason)
        self.kind = kind
        self.text = text
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.kind} {self.text!r}: {self.reason}"


class ResolveError(PenError):
    """A backend host name that does not resolve (fatal at startup, as in pen)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(host, reason)
        self.host = host
        self.reason = reason

    def __str__(self) -> str:
        return f"unknown or invalid address {self.host!r}: {self.reason}"


class StartupError(PenError):
    """A condition that stops pen before it serves (socket, pid file, privileges)."""


class IncludeLoop(PenError):
    """A config file that includes itself, directly or through others (or nests too deep)."""

    def __init__(self, chain: list[str], reason: str = "loop") -> None:
        super().__init__(chain, reason)
        self.chain = chain
        self.reason = reason

    def __str__(self) -> str:
        return f"include {self.reason}: " + " -> ".join(self.chain)
