"""``--hosts`` files: /etc/hosts-style ``ADDRESS NAME [ALIAS ...]`` lines, consulted first."""

from __future__ import annotations

from collections.abc import Iterable

from webresolve.errors import HostsFileError
from webresolve.names import canonical_address


def parse_hosts(lines: Iterable[str], path: str = "<hosts>") -> dict[str, str]:
    """Map each address to its first name, as the resolver library reads /etc/hosts.

    ``#`` starts a comment; the first line naming an address wins. Names are kept as
    written: they pass the host-name rule where every name does, when they are used
    (:func:`webresolve.answers.named`), and one that fails it counts as bogus.

    :raises HostsFileError: a line whose address is not valid, or with no name.
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
        names.setdefault(address, words[1])
    return names
