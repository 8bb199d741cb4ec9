"""Accounts: what one is, how its password is kept, and who may try how often.

Pure: no sockets, no store, no threads (the hashing is run off the event loop by
:class:`imkit.hub.credentials.PasswordHasher`). An account reserves its name (compared
by :func:`imkit.rules.names.name_key`, so case and look-alikes are one name) for
whoever logs in to it.

**Passwords** are hashed with scrypt (stdlib :func:`hashlib.scrypt`, memory-hard: each
guess costs 128 × r × N bytes of memory as well as time), with a random 16-byte salt, and
kept as ``scrypt$LN$R$P$SALT$HASH`` (base64), so that a later change of the default cost
still verifies the hashes made before it. The default cost is N = 2^14, r = 8, p = 1
(16 MiB), an eighth of OWASP's recommended minimum (N = 2^17, 128 MiB), so that a
restart's burst of logins stays short; ``--password-hash-cost`` raises it
(docs/accounts.md, "Passwords", has the measured figures and the trade). The
stdlib's default ``maxmem`` (32 MiB) refuses OWASP's N = 2^17, so :func:`hash_password`
passes a ``maxmem`` sized for the cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from imkit.rules.names import name_key

# log2 of scrypt's N: see the module docstring. Tests lower it (--password-hash-cost).
DEFAULT_HASH_COST = 14
MIN_HASH_COST, MAX_HASH_COST = 1, 20
SCRYPT_R, SCRYPT_P = 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
# A password is one line of at most this many bytes (scrypt takes any length; a bound
# keeps a request small).
MAX_PASSWORD = 1024
# Failed logins from one address, within ATTEMPT_WINDOW seconds, before the next attempt
# is refused without even checking (too_many_attempts).
MAX_FAILED_LOGINS = 3
ATTEMPT_WINDOW = 60.0
# Addresses whose failures are remembered at most (the oldest are forgotten first).
MAX_TRACKED = 100_000
# What a store says to a change of an account that no longer exists.
ACCOUNT_GONE = "the account was removed"
# The fields of Account.fields that a mute sets.
MUTE_FIELDS = ("muted_until", "muted", "mute_reason")
# Waiting private messages per account (then mailbox_full), and how long they are kept.
MAILBOX_MAX = 100
DEFAULT_OFFLINE_DAYS = 30.0


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be an account's password, or None when it can."""
    if not password:
        return "a password cannot be empty"
    if "\n" in password or "\r" in password:
        return "a password is one line"
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} bytes"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    # 128 * r * N for the big array, plus the small ones: twice is a safe allowance.
    maxmem = 2 * 128 * r * (n + p) + (1 << 20)
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=maxmem,
        dklen=HASH_BYTES,
    )


def hash_password(password: str, cost: int = DEFAULT_HASH_COST) -> str:
    """A new salted hash of ``password`` (slow on purpose: call it in a thread)."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, cost, SCRYPT_R, SCRYPT_P)
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time compare)."""
    try:
        kind, cost, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(cost), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class Account:
    """A registered name. ``name`` keeps the case it was registered with."""

    name: str
    password_hash: str
    created: float  # wall clock seconds
    last_login: float | None = None
    # imkit mute on the account (issue 14): until then (inf: permanent), and why.
    muted_until: float | None = None
    mute_reason: str | None = None

    @property
    def key(self) -> str:
        return name_key(self.name)

    def with_password(self, password_hash: str) -> Account:
        return replace(self, password_hash=password_hash)

    def fields(self) -> dict[str, Any]:
        """As kept in the store (JSON)."""
        return {
            "name": self.name,
            "hash": self.password_hash,
            "created": self.created,
            "last_login": self.last_login,
            "muted_until": None if self.muted_until == float("inf") else self.muted_until,
            "muted": self.muted_until is not None,
            "mute_reason": self.mute_reason,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Account:
        muted_until = fields.get("muted_until")
        if muted_until is None and fields.get("muted"):
            muted_until = float("inf")
        return cls(
            name=fields["name"],
            password_hash=fields["hash"],
            created=float(fields["created"]),
            last_login=fields.get("last_login"),
            muted_until=muted_until,
            mute_reason=fields.get("mute_reason"),
        )


# Between the two name keys of a conversation_key: ":", which no name's key contains
# (imkit.rules.names refuses it). A space would not do: some characters' keys begin with one
# (U+037A is " i"), so two pairs of accounts could share a conversation.
PAIR_SEPARATOR = ":"


def conversation_key(a: str, b: str) -> str:
    """The key of the private conversation between the accounts with keys ``a`` and
    ``b`` (either order): where its messages are found in the store."""
    first, second = sorted((a, b))
    return f"{first}{PAIR_SEPARATOR}{second}"


class LoginAttempts:
    """Failed logins per address: more than :data:`MAX_FAILED_LOGINS` within
    :data:`ATTEMPT_WINDOW` seconds, and the address must wait until the window is over.
    An IPv6 address counts for its /64, which one client usually has. (The logins of
    one address are checked one at a time, imkit.hub.credentials, so that attempts sent at once
    cannot all be checked before the first failure counts.)"""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # By address, the most recently failed last: the table is bounded by forgetting
        # the addresses that failed longest ago.
        self._failed: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def key(address: str) -> str:
        """What counts as one address: the IP, or for IPv6 its /64."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return address

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now)."""
        failures = self._recent(self.key(address))
        if failures is None or len(failures) < MAX_FAILED_LOGINS:
            return 0.0
        return max(0.01, failures[0] + ATTEMPT_WINDOW - self.clock())

    def failed(self, address: str) -> None:
        key = self.key(address)
        failures = self._failed.pop(key, None) or deque()
        failures.append(self.clock())
        while len(failures) > MAX_FAILED_LOGINS:
            failures.popleft()
        self._failed[key] = failures
        while len(self._failed) > MAX_TRACKED:
            self._failed.popitem(last=False)

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failed.get(key)
        if failures is None:
            return None
        cutoff = self.clock() - ATTEMPT_WINDOW
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failed[key]
            return None
        return failures
