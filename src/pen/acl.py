"""pen's ten access lists: ordered permit/deny entries over IPv4 and IPv6 networks.

The first matching entry decides; when none matches, the answer is the opposite of the last
entry (so a list of permits denies everyone else); an empty list permits; Unix-socket peers
are always permitted. Unlike pen, an IPv4 address is masked when stored, so
``10.1.2.3 255.0.0.0`` matches 10/8.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .errors import SpecError

ACL_COUNT = 10

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One entry: a network (None for a GeoIP country, which never matches here)."""

    permit: bool
    network: Network | None
    text: str


@dataclass(slots=True)
class Acls:
    """The ten lists, indexed 0..9."""

    lists: list[list[AclEntry]] = field(default_factory=lambda: [[] for _ in range(ACL_COUNT)])

    def add(self, index: int, entry: AclEntry) -> None:
        """Append an entry to list ``index``."""
        self.lists[index].append(entry)

    def clear(self, index: int) -> None:
        """Empty list ``index`` (which then permits everyone)."""
        self.lists[index].clear()

    def permits(self, index: int, address: str) -> bool:
        """Whether list ``index`` lets ``address`` in ("" is a Unix peer: always)."""
        entries = self.lists[index] if 0 <= index < ACL_COUNT else None
        if not entries or not address:
            return True
        ip = ipaddress.ip_address(address.partition("%")[0])
        for entry in entries:
            net = entry.network
            if net is not None and net.version == ip.version and ip in net:
                return entry.permit
        return not entries[-1].permit


def parse_entry(words: list[str]) -> AclEntry:
    """Parse ``permit|deny ADDR [MASK]``, ``permit|deny ADDR6[/LEN]`` or ``... country CC``.

    :raises SpecError: unknown verb or address.
    """
    text = " ".join(words)
    if len(words) < 2 or words[0] not in ("permit", "deny"):
        raise SpecError("acl entry", text, "expected permit|deny ADDRESS")
    permit = words[0] == "permit"
    if words[1] == "country":
        return AclEntry(permit, None, text)
    try:
        if ":" in words[1]:
            network: Network = ipaddress.IPv6Network(words[1], strict=False)
        else:
            mask = words[2] if len(words) > 2 else "255.255.255.255"
            network = ipaddress.IPv4Network(f"{words[1]}/{mask}", strict=False)
    except ValueError as exc:
        raise SpecError("acl entry", text, str(exc)) from None
    return AclEntry(permit, network, text)
