"""Per-address limits: how many connections one address may hold open
(``--max-per-ip``) and how fast it may open new ones (``--connect-rate``).

:class:`AddressLimits` is pure bookkeeping with an injectable clock: the server asks
:meth:`AddressLimits.admit` once per accepted connection, before anything else is spent
on it, and calls :meth:`AddressLimits.release` when that connection ends.

What counts as one address (:func:`address_key`): an IPv4 address; an IPv6 client's
/64 network (one host is given a whole /64, so counting single IPv6 addresses would
limit nothing); an IPv4-mapped IPv6 address (``::ffff:203.0.113.7``, a dual-stack
listener's IPv4 client) as the IPv4 address. 127.0.0.1 and ::1 (a local proxy or load
generator) and the ``--rate-exempt`` networks are exempt; other loopback addresses
(127.0.0.2 ...) are not.

The connect rate is a token bucket per address: a burst of N new connections, then
N per PERIOD (one every PERIOD/N). A refused attempt takes no token. An address with no
open connection that has been quiet long enough for its bucket to be full again (and
for its last refusal's log line to be old) is forgotten, a few at each admission, so
that memory follows the addresses seen lately; past :data:`MAX_TRACKED` addresses the
oldest quiet ones are forgotten early (their bucket refilled at once), which bounds
memory under a storm of many addresses.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imkit.rules.pseudonyms import host_network

__all__ = [
    "DEFAULT_CONNECT_PERIOD",
    "DEFAULT_CONNECT_RATE",
    "DEFAULT_MAX_PER_IP",
    "LOG_INTERVAL",
    "MAX_TRACKED",
    "AddressKey",
    "AddressLimits",
    "IPAddress",
    "Network",
    "Refusal",
    "address_key",
    "format_connect_rate",
    "parse_connect_rate",
    "peer_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What is counted: an IPv4 address, or an IPv6 /64 network.
AddressKey = ipaddress.IPv4Address | ipaddress.IPv6Network

# ergo's numbers: 16 connections at once, 32 new ones per 10 minutes, per address.
DEFAULT_MAX_PER_IP = 16
DEFAULT_CONNECT_RATE = 32
DEFAULT_CONNECT_PERIOD = 600.0
# An address's refusals are logged at most this often (seconds).
LOG_INTERVAL = 60.0
# Quiet addresses remembered at most; past it the oldest quiet ones are forgotten early.
MAX_TRACKED = 100_000
# Quiet addresses looked at (and forgotten when they may be) per admission.
_FORGET_PER_ADMIT = 4

# Always exempt: a local proxy or load generator.
_ALWAYS_EXEMPT = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"(\d+)/(\d+(?:\.\d+)?)([smhd])")
MAX_CONNECT_RATE = 1_000_000
MIN_PERIOD, MAX_PERIOD = 1.0, 7 * 86400.0


def peer_ip(peer: object) -> IPAddress | None:
    """The client's IP address, from what ``accept`` returned; None when it has none
    (a Unix socket). An IPv4-mapped IPv6 address is given as the IPv4 address.

    Every address-based decision (``--rate-exempt``, the per-address limits) takes the
    address from here: the one place that will read a PROXY protocol header's address.
    """
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    try:
        ip = ipaddress.ip_address(peer[0].split("%", 1)[0])  # no IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_key(ip: IPAddress) -> AddressKey:
    """What one address is counted as: the IPv4 address (an IPv4-mapped IPv6 address
    too), or the IPv6 address's /64 network."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return host_network(ip)  # the same /64 a ban on the address covers
    return ip


def parse_connect_rate(text: str) -> tuple[int, float]:
    """``N/PERIOD`` (``32/10m``, ``3/90s``, ``100/1h``) as (N, seconds); ``0`` (or
    ``0/PERIOD``) is (0, 0.0): off. ValueError, saying why, otherwise."""
    text = text.strip()
    if text == "0":
        return 0, 0.0
    found = _RATE.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not N/PERIOD (e.g. 32/10m; PERIOD in s, m, h or d) or 0 for no limit"
        )
    count = int(found.group(1))
    if count == 0:
        return 0, 0.0
    period = float(found.group(2)) * _UNITS[found.group(3)]
    if count > MAX_CONNECT_RATE:
        raise ValueError(f"{text!r}: at most {MAX_CONNECT_RATE:,} connections a period")
    if not MIN_PERIOD <= period <= MAX_PERIOD:
        raise ValueError(f"{text!r}: the period is 1s to 7d")
    return count, period


def format_period(seconds: float) -> str:
    """600 as ``10 minutes``, 60 as ``minute``, 90 as ``90 seconds``: for "every ..."."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count} {unit}s"
    if seconds == 1:
        return "second"
    return f"{seconds:g} seconds"


def format_connect_rate(count: int, period: float) -> str:
    """(32, 600.0) as ``32/10m``: the option's own form, for logs and docs."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if period >= size and period % size == 0:
            return f"{count}/{int(period // size)}{unit}"
    return f"{count}/{period:g}s"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection is turned away, and whether to log it this time."""

    key: AddressKey
    reason: str  # "max_per_ip" or "connect_rate"
    message: str  # the bye's sentence
    log: bool  # the address's first refusal in LOG_INTERVAL seconds
    unlogged: int  # refusals of this address not logged since its last logged one


class _Entry:
    """One address: its open connections, its bucket of new ones, its last log line."""

    __slots__ = ("open", "tokens", "stamp", "logged_at", "unlogged")

    def __init__(self, tokens: float, now: float) -> None:
        self.open = 0
        self.tokens = tokens
        self.stamp = now  # when the tokens were last brought up to date; last activity
        self.logged_at: float | None = None
        self.unlogged = 0


class AddressLimits:
    """Admits and releases connections per address (see the module docstring).

    ``max_open`` 0: no limit on open connections; ``rate`` 0: no limit on new ones.
    """

    def __init__(
        self,
        max_open: int = DEFAULT_MAX_PER_IP,
        rate: int = DEFAULT_CONNECT_RATE,
        period: float = DEFAULT_CONNECT_PERIOD,
        exempt: Iterable[Network] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.max_open = max(0, max_open)
        self.rate = max(0, rate) if period > 0 else 0
        self.period = period if self.rate else 0.0
        self.exempt = tuple(exempt)
        self.clock = clock
        self.max_tracked = max_tracked
        self._refill = self.rate / self.period if self.rate else 0.0  # tokens per second
        # A quiet address is remembered this long: until its bucket is full again and a
        # new refusal would be logged anyway, when forgetting it changes nothing.
        self._memory = max(self.period, LOG_INTERVAL)
        # Oldest activity first; an address with open connections is moved to the end
        # when met at the front (its release moves it there again anyway).
        self._entries: OrderedDict[AddressKey, _Entry] = OrderedDict()
        self.messages = {
            "max_per_ip": f"too many connections from your address ({self.max_open} at most)",
            "connect_rate": (
                f"too many new connections from your address: at most {self.rate} every "
                f"{format_period(self.period)}"
            ),
        }

    @property
    def enabled(self) -> bool:
        return bool(self.max_open or self.rate)

    def __len__(self) -> int:
        """Addresses remembered now."""
        return len(self._entries)

    def key_for(self, ip: IPAddress | None) -> AddressKey | None:
        """What ``ip`` is counted as; None when it is not limited (exempt, no address,
        or no limit is on)."""
        if ip is None or not self.enabled:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in _ALWAYS_EXEMPT or any(ip in network for network in self.exempt):
            return None
        return address_key(ip)

    def admit(self, key: AddressKey | None) -> Refusal | None:
        """None: the connection may go on (release it later); else why not."""
        if key is None:
            return None
        now = self.clock()
        self._forget(now)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(float(self.rate), now)
        else:
            self._entries.move_to_end(key)
        if self.rate:
            entry.tokens = min(float(self.rate), entry.tokens + (now - entry.stamp) * self._refill)
        entry.stamp = now
        if self.max_open and entry.open >= self.max_open:
            return self._refuse(key, entry, "max_per_ip", now)
        if self.rate:
            if entry.tokens < 1.0:
                return self._refuse(key, entry, "connect_rate", now)
            entry.tokens -= 1.0
        entry.open += 1
        return None

    def release(self, key: AddressKey | None) -> None:
        """An admitted connection of ``key`` has ended."""
        if key is None:
            return
        entry = self._entries.get(key)
        if entry is None or entry.open <= 0:  # pragma: no cover - only a bug
            return
        entry.open -= 1
        now = self.clock()
        if self.rate:  # bring the bucket up to date before the stamp moves
            entry.tokens = min(float(self.rate), entry.tokens + (now - entry.stamp) * self._refill)
        entry.stamp = now
        self._entries.move_to_end(key)

    def _refuse(self, key: AddressKey, entry: _Entry, reason: str, now: float) -> Refusal:
        entry.unlogged += 1
        log = entry.logged_at is None or now - entry.logged_at >= LOG_INTERVAL
        unlogged = entry.unlogged
        if log:
            entry.logged_at = now
            entry.unlogged = 0
        return Refusal(key, reason, self.messages[reason], log, unlogged)

    def _forget(self, now: float) -> None:
        """Forget a few of the quietest addresses when that changes nothing (or, past
        ``max_tracked``, when they are merely quiet)."""
        entries = self._entries
        for _ in range(_FORGET_PER_ADMIT):
            if not entries:
                return
            key, entry = next(iter(entries.items()))
            if entry.open:
                entries.move_to_end(key)
            elif now - entry.stamp >= self._memory or len(entries) > self.max_tracked:
                del entries[key]
            else:
                return  # the quietest address is recent: so are all after it


def within(peer: object, networks: list[Network]) -> bool:
    """Whether ``peer`` (a socket address) is an address in one of ``networks``."""
    ip = peer_ip(peer)
    return ip is not None and any(ip in network for network in networks)
