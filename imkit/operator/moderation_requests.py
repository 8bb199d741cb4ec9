"""The admin socket's moderation requests: ban, unban, bans, mute, unmute.

Each is checked here, kept and put in force by the hub's directory (imkit.hub.backend:
this server's store and users, or on a cluster node every node's, through Redis), and
logged with the uid of the admin socket's peer, so that every administrative action is
audited. imkit.operator.answers maps each request type to its function here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from functools import partial
from typing import Any

from imkit.hub.core import Hub
from imkit.hub.credentials import find_account
from imkit.hub.directory import STORE_TIMEOUT
from imkit.operator import room_requests
from imkit.operator.served import Administered
from imkit.protocol import BAD_REQUEST, NO_SUCH_USER, UNAVAILABLE, iso_time
from imkit.rules.accounts import MUTE_FIELDS, Account
from imkit.rules.bans import Ban, address_of, parse_target, shown, widened
from imkit.rules.msgid import format_msgid, msgid_floor, parse_msgid
from imkit.rules.names import name_key
from imkit.store.base import awaited

log = logging.getLogger("imkit.admin")

# At most this many msgids in one history_delete request.
MAX_DELETE = 1000
NO_SUCH_BAN = "no_such_ban"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def _duration(request: dict[str, Any]) -> float | None | str:
    """``for`` in seconds (None: permanent), or why it is not one."""
    value = request.get("for")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "'for' is a number of seconds"
    if not (math.isfinite(value) and value > 0):
        return "'for' is a positive number of seconds"
    return float(value)


def _reason(request: dict[str, Any]) -> str | None | bool:
    reason = request.get("reason")
    if reason is None or isinstance(reason, str):
        return " ".join(reason.split()) if reason else None  # one line, as a bye is
    return False


def _checked(request: dict[str, Any]) -> tuple[str, float | None, str | None] | dict[str, Any]:
    """A ban's, an unban's, a mute's or an unmute's target, duration and reason, or the
    error reply."""
    kind = request.get("type")
    duration, reason = _duration(request), _reason(request)
    if isinstance(duration, str):
        return _error(BAD_REQUEST, duration)
    if reason is False:
        return _error(BAD_REQUEST, "'reason' is a string")
    assert reason is not True
    name = request.get("name") if kind in ("mute", "unmute") else request.get("target")
    if not isinstance(name, str) or not name.strip():
        field = "name" if kind in ("mute", "unmute") else "target"
        return _error(BAD_REQUEST, f"{kind} needs a string {field!r}")
    return name, duration, reason


async def ban(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    if request.get("room") is not None:  # a room ban (imkit.operator.room_requests)
        return await room_requests.ban(server, request, by, on=True)
    checked = _checked(request)
    if isinstance(checked, dict):
        return checked
    target, duration, reason = checked
    return await _ban(server.hub, target.strip(), duration, reason, by)


async def unban(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    if request.get("room") is not None:
        return await room_requests.ban(server, request, by, on=False)
    checked = _checked(request)
    if isinstance(checked, dict):
        return checked
    return await _unban(server.hub, checked[0].strip(), by)


async def bans(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    hub = server.hub
    return {"type": "bans", "bans": [b.fields() for b in hub.bans.in_force(hub.wall_clock())]}


async def mute(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    checked = _checked(request)
    if isinstance(checked, dict):
        return checked
    name, duration, reason = checked
    return await _mute(server.hub, name, duration, reason, by)


async def unmute(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    checked = _checked(request)
    if isinstance(checked, dict):
        return checked
    return await _mute(server.hub, checked[0], 0.0, None, by)


async def _ban(
    hub: Hub, target: str, duration: float | None, reason: str | None, by: str
) -> dict[str, Any]:
    network = parse_target(target)
    address = target  # the address banned, as written or a guest's
    account: Account | None = None
    if network is None:  # an account's name: ban the account; a guest's: its address
        found = await find_account(hub, target)
        if isinstance(found, str):
            return _error(UNAVAILABLE, found)
        account = found
    if network is None and account is None:
        addr = await hub.directory.address_of_user(target)
        if addr is None:
            message = f"{target!r} is not an address, a network, an account or a user online"
            return _error(NO_SUCH_USER, message)
        ip = address_of(addr)
        if ip is None:  # pragma: no cover - every client address is an IP
            return _error(BAD_REQUEST, f"{target!r} has no IP address")
        address = str(ip)
        network = parse_target(address)
        assert network is not None
    now = hub.wall_clock()
    banned = account.name if account is not None else shown(network) if network else target
    ban = Ban(banned, None if duration is None else now + duration, reason, by, now)
    removed = await hub.directory.ban(ban)
    if isinstance(removed, str):
        return _error(UNAVAILABLE, removed)
    until = None if ban.until is None else iso_time(ban.until, milliseconds=False)
    log.info(
        "ban on %s by %s%s%s: %d users removed",
        ban.target,
        by,
        f" until {until}" if until else "",
        f" ({reason})" if reason else "",
        removed,
        extra={
            "event": "ban",
            "target": ban.target,
            "by": by,
            "until": until,
            "reason": reason,
            "count": removed,
        },
    )
    reply: dict[str, Any] = {"type": "ok", "target": ban.target, "until": until, "removed": removed}
    if network is not None and (single := widened(address, network)) is not None:
        reply["of"] = single  # an IPv6 address: its /64 is banned (imkit ban says so)
    return reply


async def _unban(hub: Hub, target: str, by: str) -> dict[str, Any]:
    network = parse_target(target)
    if network is None:  # an account's ban, by its name in any case
        account_ban = hub.bans.account(target, hub.wall_clock())
        if account_ban is None:
            return _error(NO_SUCH_BAN, f"no ban on {target}")
        normal = account_ban.target
    else:
        normal = shown(network)
    in_force = {b.target for b in hub.bans.in_force(hub.wall_clock())}
    if normal not in in_force and target.strip() in in_force:
        normal = target.strip()  # kept before a bare IPv6 address meant its /64
    if normal not in in_force:
        return _error(NO_SUCH_BAN, f"no ban on {normal}")
    problem = await hub.directory.unban(normal)
    if problem is not None:
        return _error(UNAVAILABLE, problem)
    log.info(
        "ban on %s lifted by %s", normal, by, extra={"event": "unban", "target": normal, "by": by}
    )
    return {"type": "ok", "target": normal}


async def _mute(
    hub: Hub, name: str, duration: float | None, reason: str | None, by: str
) -> dict[str, Any]:
    """Mute ``name`` for ``duration`` seconds (None: while connected; 0: unmute)."""
    now = hub.wall_clock()
    until = None if duration is None else now + duration
    found = await find_account(hub, name)
    if isinstance(found, str):
        return _error(UNAVAILABLE, found)
    if found is not None:  # kept with the account: it holds across reconnects, restarts
        if duration == 0.0:
            muted = replace(found, muted_until=None, mute_reason=None)
        else:
            forever = float("inf") if until is None else until
            muted = replace(found, muted_until=forever, mute_reason=reason)
        fields = muted.fields()
        changes = {field: fields[field] for field in MUTE_FIELDS}
        problem = await hub.directory.account_update(found.key, changes)
        if problem is not None:
            return _error(UNAVAILABLE, problem)
    mute_until = 0.0 if duration == 0.0 else until
    muted_user = await hub.directory.mute(name, mute_until, reason, found)
    if muted_user.get("type") == "error":
        return muted_user
    shown_name = muted_user["name"]
    # Its node is silent (a cluster): held in Redis, in force when it answers again.
    pending: dict[str, Any] = {k: muted_user[k] for k in ("pending", "silent_s") if k in muted_user}
    if duration == 0.0:
        log.info(
            "%s unmuted by %s",
            shown_name,
            by,
            extra={"event": "unmute", "user": shown_name, "by": by},
        )
        return {"type": "ok", "name": shown_name, "until": None, **pending}
    end = None if until is None else iso_time(until, milliseconds=False)
    log.info(
        "%s muted by %s%s%s",
        shown_name,
        by,
        f" until {end}" if end else "",
        f" ({reason})" if reason else "",
        extra={"event": "mute", "user": shown_name, "by": by, "until": end, "reason": reason},
    )
    # "account": the mute is kept with an account (it holds across reconnects); a
    # guest's ends with its connection, --for or not: imkit mute says which.
    reply = {"type": "ok", "name": shown_name, "until": end, "account": found is not None}
    return reply | pending


async def delete_history(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    """Remove messages from history: by msgid, or every one a user sent (``since``
    seconds ago at most, when given). Gone from every later page and replay."""
    hub = server.hub
    msgids, user, since = request.get("msgids"), request.get("user"), request.get("since")
    ids: list[int] | None = None
    sender_key: str | None = None
    floor = 0
    if msgids is not None and user is None:
        if not isinstance(msgids, list) or not 0 < len(msgids) <= MAX_DELETE:
            return _error(BAD_REQUEST, f"'msgids' is a list of 1 to {MAX_DELETE} msgids")
        numbers = [parse_msgid(m) if isinstance(m, str) else None for m in msgids]
        if any(n is None for n in numbers):
            return _error(BAD_REQUEST, "'msgids' holds something that is not a msgid")
        ids = [n for n in numbers if n is not None]
    elif isinstance(user, str) and user and msgids is None:
        sender_key = name_key(user)
        duration = _duration({"for": since})
        if isinstance(duration, str):
            return _error(BAD_REQUEST, duration.replace("'for'", "'since'"))
        if duration is not None:
            floor = msgid_floor(hub.wall_clock() - duration)
    else:
        return _error(BAD_REQUEST, "history_delete needs 'msgids' or 'user' (not both)")
    try:
        ask = partial(hub.store.delete_messages, ids, sender_key, floor)
        outcome: list[tuple[int, str | None]] | str = await awaited(ask, STORE_TIMEOUT)
    except TimeoutError:
        return _error(UNAVAILABLE, f"the store did not answer within {STORE_TIMEOUT:g}s")
    if isinstance(outcome, str):
        return _error(UNAVAILABLE, outcome)
    what = f"user {user!r}" if user is not None else f"{len(ids or ())} msgids"
    log.info(
        "history: %d messages of %s deleted by %s",
        len(outcome),
        what,
        by,
        extra={
            "event": "history_delete",
            "count": len(outcome),
            "user": user,
            "by": by,
            "msgids": [format_msgid(n) for n, _ in outcome],
        },
    )
    hub.backend.deleted(outcome)  # the users who may have them are told
    return {"type": "ok", "deleted": len(outcome)}
