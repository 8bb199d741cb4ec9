"""Logging in and changing one's password: the part of accounts that takes time.

A connection's reader awaits these (the hub never waits): the account is looked up (at
once on one server, from Redis on a cluster node), the password is checked in a worker
thread (:class:`~imkit.hub.credentials.PasswordHasher`), and only then does the hub make the
user the account's. While one client's login is being checked its later lines wait, so
they run as its account's user; every other client goes on meanwhile.

Passwords are never logged, echoed or kept: only the attempted name, when it fails.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial

import anyio
import anyio.to_thread

from imkit.hub.core import Hub
from imkit.hub.members import Member, ban_bye
from imkit.protocol import (
    BAD_REQUEST,
    LOGIN_FAILED,
    LOGIN_REQUIRED,
    TOO_MANY_ATTEMPTS,
    UNAVAILABLE,
    Error,
    Hello,
    Login,
    Passwd,
    RequestId,
)
from imkit.rules.accounts import (
    DEFAULT_HASH_COST,
    Account,
    LoginAttempts,
    hash_password,
    password_problem,
    verify_password,
)
from imkit.rules.pseudonyms import host_of
from imkit.store.base import awaited

log = logging.getLogger("imkit.server")

# How long a login waits for the account's record (a cluster's Redis that hangs).
LOOKUP_TIMEOUT = 4.0
LOGIN_FAILED_MESSAGE = "wrong name or password"


async def find_account(hub: Hub, name: str) -> Account | None | str:
    """The account called ``name``, None when there is none, or why accounts cannot be
    read (a cluster's Redis away, or silent for :data:`LOOKUP_TIMEOUT`)."""
    try:
        found: Account | None | str = await awaited(
            partial(hub.lookup_account, name), LOOKUP_TIMEOUT
        )
    except TimeoutError:
        return f"accounts could not be read within {LOOKUP_TIMEOUT:g}s"
    return found


# Hashes computed at once, in worker threads: few, so that 1,000 logins after a restart
# leave the event loop a core (scrypt releases the GIL while it works).
HASH_THREADS = 2


class PasswordHasher:
    """Hashing and checking off the event loop, at most :data:`HASH_THREADS` at once.

    A check for a name without an account still hashes (against a hash of the same
    cost), so that a wrong name takes as long as a wrong password.
    """

    def __init__(self, cost: int = DEFAULT_HASH_COST, threads: int = HASH_THREADS) -> None:
        self.cost = cost
        self._limiter = anyio.CapacityLimiter(threads)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(
            hash_password, password, self.cost, limiter=self._limiter
        )

    async def prepare(self) -> None:
        """Make the hash that a name without an account is checked against, before
        the first login: otherwise the first such check would cost two hashes."""
        if self._dummy is None:
            self._dummy = await self.hash("not a password")

    async def verify(self, password: str, stored: str | None) -> bool:
        if stored is None:
            await self.prepare()
            assert self._dummy is not None
            await anyio.to_thread.run_sync(
                verify_password, password, self._dummy, limiter=self._limiter
            )
            return False
        return await anyio.to_thread.run_sync(
            verify_password, password, stored, limiter=self._limiter
        )


class Logins:
    """The logins and password changes of one server's clients."""

    def __init__(
        self,
        hub: Hub,
        hasher: PasswordHasher,
        *,
        accounts_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.hasher = hasher
        self.accounts_only = accounts_only
        self.attempts = LoginAttempts(clock)
        self._locks: dict[str, _AddressLock] = {}

    async def login(self, member: Member, command: Login | Hello) -> bool:
        """Check ``command``'s name and password; True when ``member`` is now the
        account's user (it was told either way)."""
        if isinstance(command, Login):
            name, password = command.name, command.password
        else:
            assert command.login is not None
            name, password = command.login
        member.in_flight = (command.id, "you were not logged in")  # Hub.remove answers it
        try:
            account = await self._check(member, command.id, name, password)
        finally:
            member.in_flight = None
        if account is None:
            return False
        hub = self.hub
        now = hub.wall_clock()
        ban = hub.bans.account(account.name, now)
        if ban is not None:  # the password was right: it may know why
            hub.stats.refused_banned += 1
            log.info(
                "%s: login as %s refused: the account is banned",
                member.addr,
                account.name,
                extra={"event": "refused_banned", "addr": member.addr, "target": ban.target},
            )
            hub.remove(member, ban_bye(ban))
            return False
        hub.login(member, account, command.id, hello=isinstance(command, Hello))
        if account.muted_until is not None and account.muted_until > now:
            until = None if account.muted_until == float("inf") else account.muted_until
            hub.mute(member, until, account.mute_reason)
        log.info(
            "%s: logged in as %s",
            member.addr,
            account.name,
            extra={"event": "login", "addr": member.addr, "account": account.name},
        )
        return True

    async def passwd(self, member: Member, command: Passwd) -> None:
        """A logged-in user changes its own password, proving it knows the old one."""
        if member.account is None:
            message = "log in first: only an account has a password to change"
            self.hub.send(member, Error(command.id, LOGIN_REQUIRED, message))
            return
        problem = password_problem(command.new)
        if problem is not None:
            self.hub.send(member, Error(command.id, BAD_REQUEST, problem))
            return
        # A login to the account from elsewhere may replace this session while the
        # passwords are hashed: Hub.remove then answers it, before the bye.
        member.in_flight = (command.id, "your password was not changed")
        try:
            account = await self._check(member, command.id, member.account, command.old)
            if account is None:
                return
            password_hash = await self.hasher.hash(command.new)
        finally:
            member.in_flight = None
        if member.online and member.account == account.name:
            self.hub.change_password(member, account, password_hash, command.id)
            log.info(
                "%s changed its password",
                account.name,
                extra={"event": "password_changed", "account": account.name},
            )

    async def _check(
        self, member: Member, rid: RequestId, name: str, password: str
    ) -> Account | None:
        """The account whose name and password these are, or None (``member`` told why).

        The logins of one address are checked one at a time, so that the failures of
        attempts sent at once count before the next is checked.
        """
        address = LoginAttempts.key(host_of(member.addr))
        lock = self._locks.get(address)
        if lock is None:
            lock = self._locks[address] = _AddressLock()
        lock.users += 1
        try:
            async with lock.lock:
                return await self._check_now(member, rid, name, password, address)
        finally:
            lock.users -= 1
            if not lock.users:
                del self._locks[address]

    async def _check_now(
        self, member: Member, rid: RequestId, name: str, password: str, address: str
    ) -> Account | None:
        hub = self.hub
        wait = self.attempts.wait(address)
        if wait:
            hub.stats.failed_logins += 1
            message = f"too many failed logins; try again in {math.ceil(wait)}s"
            hub.send(member, Error(rid, TOO_MANY_ATTEMPTS, message))
            return None
        found = await find_account(hub, name)
        if isinstance(found, str):
            hub.send(member, Error(rid, UNAVAILABLE, f"cannot log in now: {found}"))
            return None
        right = await self.hasher.verify(password, None if found is None else found.password_hash)
        if member.outbox.closed:
            return None  # gone meanwhile
        if found is not None and right:
            # Removed, or given another password, while this one was being checked?
            now = await find_account(hub, name)
            right = isinstance(now, Account) and now.password_hash == found.password_hash
            found = now if isinstance(now, Account) else found
        if found is None or not right:
            self.attempts.failed(address)
            hub.stats.failed_logins += 1
            log.info(
                "%s: failed login as %r",
                member.addr,
                name,
                extra={"event": "login_failed", "addr": member.addr, "account": name},
            )
            hub.send(member, Error(rid, LOGIN_FAILED, LOGIN_FAILED_MESSAGE))
            return None
        return found


class _AddressLock:
    """One address's logins, one at a time; forgotten when nobody waits for it."""

    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.users = 0
