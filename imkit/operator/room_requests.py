"""The admin socket's requests about rooms (docs/rooms.md, "What the administrator can
do"), checked here and carried out by the hub's directory (imkit.hub.backend: this
server's rooms, or on a cluster node the cluster's, in Redis):

    {"type":"rooms"}                               -> {"type":"rooms","rooms":[...]}
    {"type":"room_add","room":R,"topic":T,"secret":B,"invite_only":B,"moderated":B}
    {"type":"room_remove","room":R}
    {"type":"room_op","room":R,"account":A}     (room_deop: the same)
    {"type":"room_set","room":R,"topic":T,"secret":B,"invite_only":B,"moderated":B,
     "key":K|null,"limit":N|null}               (a field left out: unchanged)

and the ``room`` of ``who``, ``kick``, ``history``, ``ban`` and ``unban``. Each answers
``{"type":"ok",...}`` or an error: bad_request, bad_room_name, no_such_room,
room_exists, not_registered, no_such_account, no_such_user, not_in_room, no_such_ban,
unavailable. imkit.operator.answers maps each request type to its function here.
"""

from __future__ import annotations

from typing import Any

from imkit.hub.backend import NO_SUCH_ACCOUNT
from imkit.hub.credentials import find_account
from imkit.operator.served import Administered, error_reply
from imkit.protocol import BAD_REQUEST, BAD_ROOM_NAME, UNAVAILABLE, ModeChange
from imkit.rules.rooms import TOPIC_MAX, Mask, key_problem, parse_mask, room_key, room_problem

Reply = dict[str, Any]

# room_add's and room_set's switches: the request's field -> the room's mode letter.
SWITCHES = {"secret": "s", "invite_only": "i", "moderated": "m"}


def room_name(server: Administered, request: dict[str, Any]) -> str | Reply:
    """The request's ``room``, a room's name other than the lobby's, or the error reply."""
    name = request.get("room")
    if not isinstance(name, str):
        return error_reply(BAD_REQUEST, f"{request.get('type')} needs a string 'room'")
    name = name.strip()
    problem = room_problem(name)
    if problem is not None:
        return error_reply(BAD_ROOM_NAME, f"{name!r} is not a room's name: {problem}")
    if room_key(name) == server.hub.lobby_key:
        message = f"{name} is the lobby: it has every user, no settings and no operators"
        return error_reply(BAD_REQUEST, message)
    return name


def _topic(request: dict[str, Any]) -> str | None | Reply:
    topic = request.get("topic")
    if topic is None:
        return None
    if not isinstance(topic, str):
        return error_reply(BAD_REQUEST, "'topic' is a string")
    topic = " ".join(topic.split())  # one line, as a user's topic is
    if len(topic) > TOPIC_MAX:
        return error_reply(BAD_REQUEST, f"a topic has at most {TOPIC_MAX} characters")
    return topic


def _changes(request: dict[str, Any], *, settings: bool) -> list[ModeChange] | Reply:
    """The switches (and with ``settings``, the key and the limit) the request sets."""
    changes = []
    for field, flag in SWITCHES.items():
        value = request.get(field)
        if value is None:
            continue
        if not isinstance(value, bool):
            return error_reply(BAD_REQUEST, f"{field!r} is true or false")
        changes.append(ModeChange(flag, value))
    if not settings:
        return changes
    if "key" in request:
        key = request["key"]
        problem = None if key is None else key_problem(key if isinstance(key, str) else None)
        if problem is not None:
            return error_reply(BAD_REQUEST, problem)
        changes.append(ModeChange("k", key is not None, key))
    if "limit" in request:
        limit = request["limit"]
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000
        ):
            return error_reply(BAD_REQUEST, "a member limit is a whole number from 1 to 1000000")
        changes.append(ModeChange("l", limit is not None, None if limit is None else str(limit)))
    return changes


async def rooms(server: Administered, request: dict[str, Any], by: str) -> Reply:
    return await server.hub.directory.rooms()


async def add(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name, topic = room_name(server, request), _topic(request)
    changes = _changes(request, settings=False)
    for checked in (name, topic, changes):
        if isinstance(checked, dict):
            return checked
    assert isinstance(name, str) and isinstance(changes, list) and not isinstance(topic, dict)
    return await server.hub.directory.room_add(name, topic, changes, by)


async def remove(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    return await server.hub.directory.room_remove(name, by)


async def op(server: Administered, request: dict[str, Any], by: str) -> Reply:
    return await _op(server, request, by, on=True)


async def deop(server: Administered, request: dict[str, Any], by: str) -> Reply:
    return await _op(server, request, by, on=False)


async def _op(server: Administered, request: dict[str, Any], by: str, *, on: bool) -> Reply:
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    account_name = request.get("account")
    if not isinstance(account_name, str) or not account_name.strip():
        return error_reply(BAD_REQUEST, f"{request['type']} needs a string 'account'")
    found = await find_account(server.hub, account_name.strip())
    if isinstance(found, str):
        return error_reply(UNAVAILABLE, found)
    if found is None:
        return error_reply(NO_SUCH_ACCOUNT, f"no account named {account_name!r}")
    return await server.hub.directory.room_op(name, found, on, by)


async def set_room(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name, topic = room_name(server, request), _topic(request)
    changes = _changes(request, settings=True)
    for checked in (name, topic, changes):
        if isinstance(checked, dict):
            return checked
    assert isinstance(name, str) and isinstance(changes, list) and not isinstance(topic, dict)
    return await server.hub.directory.room_set(name, topic, changes, by)


# ``who``, ``kick``, ``ban`` and ``unban`` with a ``room`` (imkit.operator.answers and
# moderation_requests hand them here).


async def who(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    return await server.hub.directory.room_who(name)


async def kick(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    user, reason = request.get("name"), request.get("reason")
    if not isinstance(user, str) or not (reason is None or isinstance(reason, str)):
        return error_reply(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
    reason = " ".join(reason.split()) if reason else None
    return await server.hub.directory.room_kick(name, user, reason, by)


async def ban(server: Administered, request: dict[str, Any], by: str, *, on: bool) -> Reply:
    """A room ban's mask (docs/rooms.md): a name, account:NAME, an address or a
    network; it has no duration and no reason (an IRC channel ban has neither)."""
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    for field in ("for", "reason"):
        if request.get(field) is not None:
            return error_reply(BAD_REQUEST, f"a room ban has no {field!r}")
    target = request.get("target")
    if not isinstance(target, str):
        return error_reply(BAD_REQUEST, f"{request['type']} needs a string 'target'")
    mask = parse_mask(target)
    if not isinstance(mask, Mask):
        return error_reply(BAD_REQUEST, mask)
    return await server.hub.directory.room_ban(name, mask, on, by)
