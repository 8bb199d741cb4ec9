"""Bans and mutes: what they are, what they match, and what the user is told.

Pure: no sockets, no store. A ban's target is an IPv4 or IPv6 address or a network in
CIDR form (a guest's name given to ``imkit ban`` is turned into its address by the
caller; names that parse as IPv4 addresses or networks are not valid names, so a target
is never ambiguous — imkit.rules.names). Every ban and mute has an absolute end time (None:
permanent) so that it ends by itself and means the same after a restart.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from imkit.rules.names import name_key
from imkit.rules.pseudonyms import host_network, host_of
from imkit.rules.times import iso_time

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A duration longer than this is a typo (or meant "permanent": leave out --for).
MAX_DURATION = 10 * 365 * 86400


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``10m``, ``2h``, ``7d``, or a sum such as ``1h30m``;
    ValueError otherwise."""
    text = text.strip()
    position, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"{text!r} is not a duration like 90s, 10m, 2h or 7d")
    if not 0 < total <= MAX_DURATION:
        raise ValueError(f"{text!r}: a duration is from 1s to 3650d")
    return float(total)


def parse_target(text: str) -> IPNetwork | None:
    """The network a ban TARGET names, or None when it is not an address or network
    (then it is a user's name).

    An IPv4 address is a network of one (an IPv4-mapped IPv6 address too: it is IPv4). An
    IPv6 address without a prefix is its /64, as for every other per-address rule
    (:func:`imkit.rules.pseudonyms.host_network`): its owner may take any address in it, so a
    ban on one would ban nobody. ``2001:db8::1/128`` bans exactly that address."""
    text = text.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        mapped = network.network_address.ipv4_mapped
        prefix = max(0, network.prefixlen - 96)
        return ipaddress.ip_network(f"{mapped}/{prefix}", strict=False)
    if isinstance(network, ipaddress.IPv6Network) and "/" not in text:
        return host_network(network.network_address)
    return network


def address_of(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of an imkit address ``ip:port`` or ``[ip]:port`` (IPv4-mapped as IPv4)."""
    try:
        return ipaddress.ip_address(host_of(addr))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Ban:
    # The network as text (203.0.113.7/32 is shown as 203.0.113.7), or an account's
    # name: a name never parses as an address or network (imkit.rules.names).
    target: str
    until: float | None  # wall-clock seconds; None: permanent
    reason: str | None
    by: str  # who banned: the admin socket peer's user, e.g. "uid 1000"
    created: float

    @property
    def network(self) -> IPNetwork | None:
        """The addresses banned; None for an account's ban."""
        return parse_target(self.target)

    @property
    def kind(self) -> str:
        network = self.network
        if network is None:
            return "account"
        return "address" if network.num_addresses == 1 else "network"

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def fields(self) -> dict[str, Any]:
        """As the admin socket and Redis carry it."""
        return {
            "target": self.target,
            "kind": self.kind,
            "until": None if self.until is None else iso_time(self.until, milliseconds=False),
            "until_s": self.until,
            "reason": self.reason,
            "by": self.by,
            "created": self.created,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Ban:
        return cls(
            str(fields["target"]),
            None if fields.get("until_s") is None else float(fields["until_s"]),
            fields.get("reason"),
            str(fields.get("by", "")),
            float(fields.get("created", 0.0)),
        )


def shown(network: IPNetwork) -> str:
    """A ban target as people write it, and as :func:`parse_target` reads it back: an
    IPv4 address without /32; an IPv6 /128 keeps its prefix (without it, the address
    would mean its /64)."""
    if network.version == 4 and network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def widened(target: str, network: IPNetwork) -> str | None:
    """The IPv6 address that ``target`` named when the ban covers its /64 instead
    (to say so); None when the ban covers what was written."""
    try:
        address = ipaddress.ip_address(target.strip())
    except ValueError:
        return None
    return str(address) if address.version == 6 and network.num_addresses > 1 else None


def refusal(what: str, reason: str | None, until: float | None) -> str:
    """``you are banned: REASON (until 2026-11-28T10:00:00Z)``, parts as they apply."""
    text = what
    if reason:
        text += f": {reason}"
    if until is not None:
        text += f" (until {iso_time(until, milliseconds=False)})"
    return text


@dataclass
class Bans:
    """The bans in force, by target; lookups skip those that have ended."""

    _by_target: dict[str, Ban] = field(default_factory=dict)

    def add(self, ban: Ban) -> None:
        self._by_target[ban.target] = ban

    def remove(self, target: str) -> Ban | None:
        return self._by_target.pop(target, None)

    def match(self, addr: str, now: float) -> Ban | None:
        """The ban in force on the address ``addr`` (``ip:port``), if any."""
        if not self._by_target:
            return None
        ip = address_of(addr)
        if ip is None:
            return None
        for ban in self._by_target.values():
            network = ban.network
            if network is not None and ban.active(now) and ip.version == network.version:
                if ip in network:
                    return ban
        return None

    def account(self, name: str, now: float) -> Ban | None:
        """The ban in force on the account called ``name`` (case and look-alikes
        ignored), if any."""
        key = name_key(name)
        for ban in self._by_target.values():
            if ban.network is None and name_key(ban.target) == key and ban.active(now):
                return ban
        return None

    def in_force(self, now: float) -> list[Ban]:
        """The bans that have not ended, oldest first; ended ones are forgotten."""
        for target in [t for t, b in self._by_target.items() if not b.active(now)]:
            del self._by_target[target]
        return sorted(self._by_target.values(), key=lambda b: b.created)

    def __len__(self) -> int:
        return len(self._by_target)
