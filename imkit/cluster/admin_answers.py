"""The admin socket's who, kick, stats, bans, mutes and accounts over the whole cluster:
:class:`RedisDirectory`, a cluster node's :class:`~imkit.hub.backend.Directory`.

``who`` reads everyone from Redis (no request to the other nodes, which a dead node
would leave unanswered); when Redis cannot be reached it lists this node's users and
says that the list is partial. ``kick`` finds the user's node in Redis and asks it
through that node's stream. ``stats`` adds the live nodes, from their heartbeats.
``account_add``, ``account_update``, ``account_remove`` and ``accounts`` (for
imkit.operator.account_requests, which checks and hashes first) are one script each: every node
sees the change at once, and the users it concerns are told by their own node.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from imkit.cluster import FULL
from imkit.cluster.connection import FAILURES, is_full
from imkit.cluster.room_admin import RedisRoomDirectory
from imkit.cluster.terms import ascii_keys, parse_users
from imkit.hub.backend import ACCOUNT_EXISTS, NO_SUCH_ACCOUNT, Reply
from imkit.protocol import NO_SUCH_USER, UNAVAILABLE, iso_time
from imkit.rules.accounts import ACCOUNT_GONE, Account
from imkit.rules.bans import Ban, address_of
from imkit.rules.names import name_key

if TYPE_CHECKING:
    from imkit.cluster.backend import RedisBackend
    from imkit.hub.members import Member

log = logging.getLogger("imkit.admin")


def user_row(
    node: RedisBackend, user: dict[str, Any], local: dict[str, Member], now: float
) -> dict[str, Any]:
    """One row of ``imkit who`` from a conn's record in Redis (``local``: this node's
    members by id, whose idle time is known here)."""
    link = node.link
    since = float(user.get("since") or 0)
    row: dict[str, Any] = {
        "name": user["name"],
        # --hide-addresses: Redis keeps the address users see (a pseudonym) in
        # "addr" and the real one beside it, for the operator only.
        "addr": user.get("real") or user["addr"],
        "account": user.get("account"),
        "mode": user.get("mode", "text"),
        "node": user.get("node", ""),
        "connected_at": iso_time(since),
    }
    member = local.get(str(user.get("mid", ""))) if user.get("node") == link.node else None
    if member is not None:
        row["connected_s"] = round(now - member.connected_at, 3)
        row["idle_s"] = round(now - member.last_active, 3)
    else:
        row["connected_s"] = round(max(0.0, time.time() - since), 3)
        row["idle_s"] = None  # known only to the user's own node
    if node.hub.hide_addresses:
        row["pseudonym"] = user["addr"]
    return row


async def who(node: RedisBackend) -> dict[str, Any]:
    link = node.link
    assert link is not None
    now = time.monotonic()
    local = {str(m.id): m for m in node.hub.members}

    def detail(user: dict[str, Any]) -> dict[str, Any]:
        return user_row(node, user, local, now)

    if link.problem is None:
        try:
            users = parse_users(await link.run_script("who"))
            return {"type": "users", "users": [detail(u) for u in users]}
        except FAILURES:
            pass
    mine = [
        detail(
            {
                "name": m.name,
                "addr": m.shown_addr,
                "real": m.addr,
                "account": m.account,
                "mode": m.mode.value,
                "node": link.node,
                "mid": m.id,
                "since": m.connected_wall,
            }
        )
        for m in node.hub.members
    ]
    problem = link.problem or "the cluster's Redis did not answer"
    return {"type": "users", "users": mine, "partial": True, "problem": problem}


# A node silent for more than this many heartbeats is paused, stuck or dead: an action
# for its users is held and takes effect when it answers again (lua/kick.lua), and the
# admin is told so. Two: one late beat is common on a busy machine.
SILENT_BEATS = 2


async def kick(node: RedisBackend, name: str, reason: str | None) -> dict[str, Any]:
    reply = await _to_user(node, "kick", name, reason or "")
    if isinstance(reply, dict):
        return reply
    return {"type": "ok", "name": reply[1], "node": reply[3], **silence(node, reply[4])}


def silence(node: RedisBackend, silent_ms: Any) -> dict[str, Any]:
    """For an admin's reply: ``pending`` and ``silent_s`` when the user's node has been
    silent for more than :data:`SILENT_BEATS` beats (``silent_ms``: since its last beat,
    -1 when it is no longer among the live nodes): the action is held in Redis
    (lua/kick.lua) and takes effect when the node answers again, and its users are
    offline for everyone if it is declared dead first."""
    link = node.link
    assert link is not None
    silent = int(silent_ms)
    if 0 <= silent <= SILENT_BEATS * link.beat_interval * 1000:
        return {}
    return {"pending": True, "silent_s": round(max(silent, 0) / 1000, 1)}


async def _to_user(
    node: RedisBackend, script: str, name: str, *args: str
) -> list[Any] | dict[str, Any]:
    """Run ``script`` (kick, mute), which finds the user ``name`` on whatever node it is
    and writes to that node's stream: its reply, or the error reply for the admin."""
    link = node.link
    assert link is not None
    try:
        reply = await link.run_script(script, name_key(name), *args)
    except FAILURES as error:
        return {"type": "error", "code": UNAVAILABLE, "message": _unreachable(node, error)}
    if reply[0] != "ok":
        message = f"no user named {name!r} is online"
        return {"type": "error", "code": NO_SUCH_USER, "message": message}
    return list(reply)


def _unreachable(node: RedisBackend, error: BaseException | None = None) -> str:
    """Why an admin request that needed Redis was not carried out (said once, in the
    admin's terms: not the users' "its server cannot reach ...")."""
    link = node.link
    assert link is not None
    if is_full(error) or link.problem == FULL:
        return f"the cluster's Redis at {link.where} is full (maxmemory reached): nothing changed"
    if isinstance(error, TimeoutError):
        return f"the cluster's Redis at {link.where} did not answer in time"
    why = ""
    if error is not None:  # its first line: redis-py's errors can run on
        why = ": " + (str(error).strip() or type(error).__name__).splitlines()[0]
    return f"this node cannot reach the cluster's Redis at {link.where}{why}"


async def cluster_stats(node: RedisBackend) -> dict[str, Any]:
    """The cluster section of ``imkit stats``: live nodes and their totals."""
    link = node.link
    assert link is not None
    section: dict[str, Any] = {
        "name": link.name,
        "node": link.node,
        "redis": link.where,
        "problem": link.problem,
        "data_lost": link.data_lost,
        "outages": link.outages,  # Redis unreachable or full, each counted once
        "redis_full": link.full_outages,  # of those, the times it was full
        "nodes": None,
        "totals": None,
        "accounts": None,  # in Redis (the node's own "accounts" counts none)
        "rooms": None,  # every room in Redis (the node's own "rooms": those with members here)
    }
    try:
        reply = await link.run_script("nodes")
    except FAILURES:
        return section
    now_ms = int(reply[0])
    nodes = []
    totals = dict.fromkeys(
        ("users_online", "connections_now", "messages_received", "messages_delivered"), 0
    )
    for i in range(1, len(reply), 3):
        info = json.loads(reply[i + 2] or "{}")
        nodes.append(
            {
                "id": reply[i],
                "addr": info.get("addr", ""),
                "users": info.get("users", 0),
                "last_seen_s": round(max(0, now_ms - float(reply[i + 1])) / 1000, 3),
            }
        )
        totals["users_online"] += int(info.get("users", 0))
        for key in ("connections_now", "messages_received", "messages_delivered"):
            totals[key] += int(info.get(key, 0))
    section["nodes"] = nodes
    section["totals"] = totals
    try:
        section["accounts"] = int(await link.request(("HLEN", link.accounts_key)))
        section["rooms"] = int(await link.request(("HLEN", f"{link.name}:rooms")))
    except FAILURES:
        pass
    return section


# ------------------------------------------------------------------------ moderation


async def ban_everywhere(node: RedisBackend, ban: Ban) -> int | str:
    """Keep ``ban`` in Redis and put it in force on every node; how many users it
    removes (counted from who is online), or why it could not be made."""
    link = node.link
    assert link is not None
    network = ban.network
    try:
        users = parse_users(await link.run_script("who"))
        await link.run_script("ban", ban.target, json.dumps(ban.fields()))
    except FAILURES as error:
        return _unreachable(node, error)
    hits = 0
    for user in users:
        if network is None:  # an account's ban: its user, if logged in somewhere
            account = user.get("account")
            hits += bool(account) and name_key(str(account)) == name_key(ban.target)
            continue
        # With --hide-addresses the record shows a pseudonym; "real" is the address.
        ip = address_of(str(user.get("real") or user.get("addr", "")))
        if ip is not None and ip.version == network.version and ip in network:
            hits += 1
    return hits


async def unban(node: RedisBackend, target: str) -> str | None:
    link = node.link
    assert link is not None
    try:
        await link.run_script("unban", target)
    except FAILURES as error:
        return _unreachable(node, error)
    return None


async def address_of_user(node: RedisBackend, name: str) -> str | None:
    """The address of the user online as ``name`` on any node."""
    link = node.link
    assert link is not None
    key = name_key(name)
    try:
        users = parse_users(await link.run_script("who"))
    except FAILURES:
        return None
    for user in users:
        if name_key(str(user.get("name", ""))) == key:
            return str(user.get("real") or user.get("addr", ""))
    return None


async def mute(
    node: RedisBackend, name: str, until: float | None, reason: str | None
) -> dict[str, Any]:
    """Mute (until 0: unmute) the user ``name`` on whatever node it is: ``{"name":
    shown name}`` (with :func:`silence`'s fields when its node is silent), or the
    error reply (``type`` error)."""
    shown_until = "" if until is None else repr(until)
    if until is not None and until <= 0:
        shown_until = "0"
    reply = await _to_user(node, "mute", name, shown_until, reason or "")
    if isinstance(reply, dict):
        return reply
    return {"name": str(reply[1]), **silence(node, reply[3])}


# ------------------------------------------------------------------------ accounts


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


async def account_add(node: RedisBackend, account: Account) -> str | None | dict[str, Any]:
    """Keep the new ``account`` in Redis; the new name of the guest who held its name
    (renamed on its node and told why), None when none did, or the error reply."""
    link = node.link
    assert link is not None
    fields = json.dumps(account.fields())
    try:
        reply = await link.run_script("account_add", account.key, fields, ascii_keys())
    except FAILURES as error:
        return _error(UNAVAILABLE, _unreachable(node, error))
    if reply[0] == "exists":
        return _error(ACCOUNT_EXISTS, f"there is an account named {reply[1]} already")
    return str(reply[1]) or None


async def account_update(node: RedisBackend, key: str, changes: dict[str, Any]) -> str | None:
    """Change some fields of the account ``key`` in Redis (a password, a mute:
    imkit.moderate), leaving the others; why it could not be, or None."""
    link = node.link
    assert link is not None
    try:
        reply = await link.run_script("account_update", key, json.dumps(changes))
    except FAILURES as error:
        return _unreachable(node, error)
    if reply[0] != "ok":
        return ACCOUNT_GONE
    return None


async def account_remove(node: RedisBackend, name: str) -> dict[str, Any]:
    """Remove the account ``name`` with its waiting messages and conversations; its
    user, on whatever node, gets the bye ``account_removed``."""
    link = node.link
    assert link is not None
    try:
        reply = await link.run_script(
            "account_remove", name_key(name), node.hub.store.mail_cutoff()
        )
    except FAILURES as error:
        return _error(UNAVAILABLE, _unreachable(node, error))
    if reply[0] != "ok":
        return _error(NO_SUCH_ACCOUNT, f"no account named {name!r}")
    return {
        "type": "ok",
        "name": str(reply[1]),
        "logged_out": int(reply[2]),
        "discarded": int(reply[3]),
    }


async def accounts(node: RedisBackend) -> list[tuple[Account, int]] | dict[str, Any]:
    """Every account, with how many messages wait for it (within --offline-days)."""
    link = node.link
    assert link is not None
    try:
        reply = await link.run_script("accounts", node.hub.store.mail_cutoff())
    except FAILURES as error:
        return _error(UNAVAILABLE, _unreachable(node, error))
    listed = []
    for i in range(0, len(reply), 2):
        try:
            account = Account.from_fields(json.loads(reply[i]))
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: lookup_account logs it when it is asked for
        listed.append((account, int(reply[i + 1])))
    return listed


class RedisDirectory(RedisRoomDirectory):
    """The whole cluster, as the admin socket of one of its nodes sees it (the answers
    above, for the node's backend)."""

    def __init__(self, node: RedisBackend) -> None:
        self.node = node

    def accounts_held(self) -> int | None:
        return None  # in Redis: the cluster section counts them

    def unreachable(self, error: BaseException) -> str:
        return _unreachable(self.node, error)

    def user_row(self, user: dict[str, Any], local: dict[str, Member], now: float) -> Reply:
        return user_row(self.node, user, local, now)

    async def who(self) -> Reply:
        return await who(self.node)

    async def kick(self, name: str, reason: str | None, by: str) -> Reply:
        reply = await kick(self.node, name, reason)
        if reply["type"] == "ok":
            log.info(
                "%s kicked by %s (on node %s): %s",
                reply["name"],
                by,
                reply["node"],
                reason,
                extra={
                    "event": "kick_requested",
                    "user": reply["name"],
                    "by": by,
                    "reason": reason,
                },
            )
        return reply

    async def stats_extra(self) -> Reply:
        section = await cluster_stats(self.node)
        return {"node": self.node.node, "cluster": section}

    async def ban(self, ban: Ban) -> int | str:
        return await ban_everywhere(self.node, ban)

    async def unban(self, target: str) -> str | None:
        return await unban(self.node, target)

    async def address_of_user(self, name: str) -> str | None:
        return await address_of_user(self.node, name)

    async def mute(
        self, name: str, until: float | None, reason: str | None, found: Account | None
    ) -> Reply:
        muted_user = await mute(self.node, name, until, reason)
        if muted_user.get("type") == "error":
            if found is None or muted_user.get("code") != NO_SUCH_USER:
                return muted_user
            muted_user = {"name": found.name}  # an account offline: muted at its login
        return muted_user

    async def account_add(self, account: Account) -> str | None | Reply:
        return await account_add(self.node, account)

    async def account_update(self, key: str, changes: dict[str, Any]) -> str | None:
        return await account_update(self.node, key, changes)

    async def account_remove(self, name: str) -> Reply:
        return await account_remove(self.node, name)

    async def accounts(self) -> list[tuple[Account, int]] | Reply:
        return await accounts(self.node)
