"""The admin socket's view of one server's chat: :class:`LocalDirectory`, the
:class:`~imkit.hub.backend.Directory` of a server on its own (its users are the hub's,
its bans and accounts are in its store). A cluster node's is
``imkit.cluster.admin_answers.RedisDirectory``.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from imkit.hub.backend import NO_SUCH_ACCOUNT, Reply
from imkit.protocol import NO_SUCH_USER, UNAVAILABLE, iso_time
from imkit.rules.accounts import Account
from imkit.rules.bans import Ban
from imkit.rules.names import name_key
from imkit.store.base import awaited

if TYPE_CHECKING:
    from imkit.hub.core import Hub

log = logging.getLogger("imkit.admin")

# How long a change waits for the store to keep it before the request is answered.
STORE_TIMEOUT = 4.0


def error_reply(code: str, message: str) -> Reply:
    return {"type": "error", "code": code, "message": message}


async def kept(ask: Any) -> str | None:
    """What the store said to a change (None: kept), or why it said nothing."""
    try:
        problem: str | None = await awaited(ask, STORE_TIMEOUT)
    except TimeoutError:
        return f"the store did not answer within {STORE_TIMEOUT:g}s"
    return problem


def user_rows(hub: Hub) -> list[dict[str, Any]]:
    """``imkit who``'s rows for the users of this server, in order of arrival."""
    now = time.monotonic()
    rows = [
        {
            "name": m.name,
            "addr": m.addr,
            "account": m.account,
            "mode": "json" if m.mode.value == "json" else "text",
            "connected_at": iso_time(m.connected_wall),
            "connected_s": round(now - m.connected_at, 3),
            "idle_s": round(now - m.last_active, 3),
        }
        for m in hub.members
    ]
    if hub.hide_addresses:  # what the users see in its place
        for row, member in zip(rows, hub.members, strict=True):
            row["pseudonym"] = member.shown_addr
    return rows


class LocalDirectory:
    """One server's users, bans and accounts, for the admin socket."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def accounts_held(self) -> int | None:
        return len(self.hub.store.accounts)

    async def who(self) -> Reply:
        return {"type": "users", "users": user_rows(self.hub)}

    async def kick(self, name: str, reason: str | None, by: str) -> Reply:
        member = self.hub.kick(name, reason)
        if member is None:
            return error_reply(NO_SUCH_USER, f"no user named {name!r} is online")
        log.info(
            "%s (%s) kicked by %s: %s",
            member.name,
            member.addr,
            by,
            reason,
            extra={
                "event": "kicked",
                "user": member.name,
                "addr": member.addr,
                "by": by,
                "reason": reason,
            },
        )
        return {"type": "ok", "name": member.name}

    async def stats_extra(self) -> Reply:
        return {"cluster": None}

    # ---------------------------------------------------------------- moderation

    async def ban(self, ban: Ban) -> int | str:
        hub = self.hub
        problem = await kept(partial(hub.store.save_ban, ban.fields()))
        if problem is not None:
            return problem
        return hub.apply_ban(ban)

    async def unban(self, target: str) -> str | None:
        hub = self.hub
        problem = await kept(partial(hub.store.delete_ban, target))
        if problem is None:
            hub.bans.remove(target)
        return problem

    async def address_of_user(self, name: str) -> str | None:
        member = self.hub.find(name)
        return None if member is None else member.addr

    async def mute(
        self, name: str, until: float | None, reason: str | None, found: Account | None
    ) -> Reply:
        hub = self.hub
        member = hub.find(name)
        if member is not None:
            shown_name = member.name
        elif found is not None:
            shown_name = found.name  # an account that is offline: muted when it logs in
        else:
            return error_reply(NO_SUCH_USER, f"no user named {name!r} is online")
        if member is not None and until == 0.0:
            member.muted_until = member.mute_reason = None
        elif member is not None:
            hub.mute(member, until, reason)
        return {"name": shown_name}

    # ------------------------------------------------------------------ accounts

    async def account_add(self, account: Account) -> str | None | Reply:
        hub = self.hub
        problem = await kept(partial(hub.store.save_account, account))
        if problem is not None:
            return error_reply(UNAVAILABLE, problem)
        return hub.reserve(account)

    async def account_update(self, key: str, changes: dict[str, Any]) -> str | None:
        return await kept(partial(self.hub.store.update_account, key, changes))

    async def account_remove(self, name: str) -> Reply:
        hub = self.hub
        account = hub.store.accounts.get(name_key(name))
        if account is None:
            return error_reply(NO_SUCH_ACCOUNT, f"no account named {name!r}")
        discarded = hub.store.waiting(account.key)
        problem = await kept(partial(hub.store.delete_account, account.key))
        if problem is not None:
            return error_reply(UNAVAILABLE, problem)
        logged_out = hub.log_out(account.name)
        return {
            "type": "ok",
            "name": account.name,
            "logged_out": logged_out,
            "discarded": discarded,
        }

    async def accounts(self) -> list[tuple[Account, int]] | Reply:
        store = self.hub.store
        return [(account, store.waiting(account.key)) for account in store.accounts.values()]
