"""Hidden addresses (``--hide-addresses``): the pseudonym shown in place of an address.

Without the option every user sees every other user's ``ip:port``, as in the seed.
With it, the hub shows each user a *pseudonym* where the address was (``[ADDR]``
prefixes, default names, ``who``, presence and rename events, history):

    anon:7f3k2p

``anon:`` and the first 6 characters (lower-case base32: ``a``-``z``, ``2``-``7``) of
HMAC-SHA256(secret, IP), the secret being 32 random bytes kept in the store (the
SQLite file's ``meta`` table, or ``P:secret`` in a cluster's Redis), so that a pseudonym
is the same after a restart and on every node of a cluster. Without the secret nobody
can tell which address a pseudonym stands for, or test a guess: the IPv4 space is small
enough to hash whole, so a plain hash would hide nothing.

**Per IP, not per connection.** The port is left out: every connection from one
address shows the same pseudonym, across renames, reconnects and restarts. That is
what lets people recognise a guest who comes back (and lets the ``#2`` rule of default
names work as for addresses); the price is that others can link a guest's names and
visits from one address, as they could with the address itself. 30 bits make two
addresses sharing a pseudonym unlikely below tens of thousands of addresses, and
harmless when it happens: default names stay unique (``anon:7f3k2p#2``).

The pseudonym contains ``:``, so, like an address, nobody can take it as a name
(:func:`imkit.rules.names.name_problem`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

__all__ = [
    "IPV6_HOST_PREFIX",
    "PSEUDONYM_PREFIX",
    "host_network",
    "host_of",
    "new_secret",
    "pseudonym",
]

PSEUDONYM_PREFIX = "anon:"
# Characters of base32 kept: 30 bits.
PSEUDONYM_LENGTH = 6
SECRET_BYTES = 32
# One IPv6 host is given a whole /64 (RFC 6177), and may take any address in it: every
# per-address rule (the limits, the login throttle, bans) treats the /64 as one address.
IPV6_HOST_PREFIX = 64


def new_secret() -> bytes:
    """A new random secret for pseudonyms."""
    return secrets.token_bytes(SECRET_BYTES)


def host_of(addr: str) -> str:
    """The IP of ``ip:port`` or ``[ip]:port`` (as :func:`format_addr` writes them), in
    one canonical form: an IPv4 address mapped into IPv6 is the IPv4 address."""
    host, sep, _ = addr.rpartition(":")
    if not sep or (":" in host and not host.startswith("[")):
        host = addr  # no port
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a Unix socket): hashed as it is
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def host_network(ip: ipaddress.IPv6Address) -> ipaddress.IPv6Network:
    """The network that counts as one address for the IPv6 address ``ip``: its /64."""
    shift = 128 - IPV6_HOST_PREFIX
    return ipaddress.IPv6Network((int(ip) >> shift << shift, IPV6_HOST_PREFIX))


def pseudonym(secret: bytes, addr: str) -> str:
    """The pseudonym shown for the address ``addr`` (its port does not count)."""
    digest = hmac.new(secret, host_of(addr).encode(), hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.b32encode(digest).decode()[:PSEUDONYM_LENGTH].lower()
