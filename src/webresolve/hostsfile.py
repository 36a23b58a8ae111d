"""``--hosts`` files: /etc/hosts-style ``ADDRESS NAME [ALIAS ...]`` lines, consulted first."""

from __future__ import annotations

from collections.abc import Iterable

from webresolve.errors import HostsFileError
from webresolve.names import canonical_address, valid_hostname


def parse_hosts(lines: Iterable[str], path: str = "<hosts>") -> dict[str, str]:
    """Map each address to its first name, as the resolver library reads /etc/hosts.

    ``#`` starts a comment; the first line naming an address wins.

    :raises HostsFileError: a line whose address or name is not valid.
    """
    names: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        address = canonical_address(words[0].encode("ascii", "replace"))
        if address is None:
            raise HostsFileError(path, lineno, f"not an IP address: {words[0]!r}")
        if len(words) < 2:
            raise HostsFileError(path, lineno, f"no name for {words[0]}")
        if not valid_hostname(words[1]):
            raise HostsFileError(path, lineno, f"not a valid host name: {words[1]!r}")
        names.setdefault(address, words[1].rstrip("."))
    return names
