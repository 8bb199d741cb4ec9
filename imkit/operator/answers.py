"""The answers to admin requests, as the admin socket (imkit.operator.admin_socket)
receives them:

    {"type":"who"}                         -> {"type":"users","users":[...]}
    {"type":"kick","name":N,"reason":R}    -> {"type":"ok","name":N} | error no_such_user
    {"type":"stats"}                       -> {"type":"stats", counters..., store...}
    {"type":"history","limit":N,"before":M} -> {"type":"history","messages":[...],"more":B}
    (with "query": Q, a search: docs/integrations.md, "Search")

and the moderation (imkit.operator.moderation_requests), account
(imkit.operator.account_requests) and room (imkit.operator.room_requests) requests.
``who``, ``kick`` and ``history`` take a ``room`` (a room's members, a kick from it, its
history).

Every request is answered at once but ``history``, which waits (a bounded time) for the
store to read it.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

from imkit.hub.directory import user_rows
from imkit.operator import account_requests, hook_requests, moderation_requests, room_requests
from imkit.operator.served import Administered, Handler, error_reply
from imkit.protocol import (
    BAD_REQUEST,
    UNAVAILABLE,
    History,
    Invalid,
    iso_time,
    parse_json_request,
)
from imkit.protocol.admin import MAX_REQUEST
from imkit.rules.rooms import room_key
from imkit.rules.search import query_words
from imkit.store.base import awaited

log = logging.getLogger("imkit.admin")

# How long a history request waits for the store (a disk that hangs): less than the
# client's CLIENT_TIMEOUT (imkit.client.admin), so that the operator is told why rather
# than that nobody answered.
HISTORY_TIMEOUT = 4.0


def json_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


async def answer(server: Administered, line: bytes | None, by: str = "admin") -> dict[str, Any]:
    """The reply to one admin request line (None: the line was too long); ``by`` is who
    asked (the peer's uid), for the audit log."""
    if line is None:
        return error_reply(BAD_REQUEST, f"request longer than {MAX_REQUEST} bytes")
    try:
        request = json.loads(line)
    except ValueError:
        return error_reply(BAD_REQUEST, "a request is one JSON object per line")
    if not isinstance(request, dict):
        return error_reply(BAD_REQUEST, "a request is one JSON object per line")
    kind = request.get("type")
    handler = REQUESTS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        return error_reply(BAD_REQUEST, f"unknown request type {kind!r}")
    return await handler(server, request, by)


async def who(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    """Everyone online (on a cluster node: in the whole cluster); with a ``room``, its
    members."""
    if request.get("room") is not None:
        return await room_requests.who(server, request, by)
    return await server.hub.directory.who()


async def kick(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    if request.get("room") is not None:  # out of that room only
        return await room_requests.kick(server, request, by)
    name, reason = request.get("name"), request.get("reason")
    if not isinstance(name, str) or not (reason is None or isinstance(reason, str)):
        return error_reply(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
    return await server.hub.directory.kick(name, reason, by)


async def stats_request(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    """This server's counters (and on a cluster node, the cluster's section)."""
    extra = await server.hub.directory.stats_extra()  # the cluster's, from Redis
    return {"type": "stats", **stats(server), **extra}


async def history(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    """Past public messages, oldest first, as the chat's history request gives them: the
    lobby's, or a ``room``'s (any room's, one that has ended too)."""
    # The same request as a chat client's, checked by the same parser.
    command = parse_json_request({**request, "id": None})
    if not isinstance(command, History):
        message = command.message if isinstance(command, Invalid) else "not a history request"
        code = command.code if isinstance(command, Invalid) else BAD_REQUEST
        return error_reply(code, f"history: {message}")
    if command.with_ is not None:
        return error_reply(BAD_REQUEST, "history: the admin socket reads no private conversation")
    limit, before = command.limit, command.before
    key = None if command.room is None else room_key(command.room)
    if key == server.hub.lobby_key:
        key = None  # the lobby's history, as without a room
    ask = server.hub.store.history
    if command.query is not None:  # imkit history --grep: a search, any room's
        ask = partial(server.hub.store.search, query_words(command.query))
    read = partial(ask, limit, before, room=key)
    try:
        page = await awaited(read, HISTORY_TIMEOUT)
    except TimeoutError:
        return error_reply(UNAVAILABLE, f"the store did not answer within {HISTORY_TIMEOUT:g}s")
    if isinstance(page, str):
        return error_reply(UNAVAILABLE, page)
    messages = [
        {
            "msgid": message.msgid,
            "time": iso_time(message.time),
            "from": message.sender,
            "addr": message.addr,
            "text": message.text,
            # when its author changed its text (docs/integrations.md, "Delete and edit")
            **({} if message.edited is None else {"edited": iso_time(message.edited)}),
        }
        for message in page.messages
    ]
    reply = {"type": "history", "messages": messages, "more": page.more}
    if key is not None:
        reply["room"] = command.room
    return reply


def users(server: Administered) -> list[dict[str, Any]]:
    """``imkit who``'s rows for this server's own users."""
    return user_rows(server.hub)


def rooms_here(server: Administered) -> int:
    """The rooms this server holds (a cluster node: those with members here)."""
    held = server.hub.directory.rooms_held()
    return len(server.hub.rooms) if held is None else held


def stats(server: Administered) -> dict[str, Any]:
    counters = server.hub.stats
    store = server.hub.store
    return {
        "uptime_s": round(time.monotonic() - server.started_at, 3),
        "users_online": len(server.hub),
        "connections_now": server.connections_now,
        # IRC clients (--irc) among the users here.
        "users_irc": sum(1 for m in server.hub.local_members() if m.mode.value == "irc"),
        "connections_total": counters.connections_total,
        "messages_received": counters.messages_received,
        "messages_delivered": counters.messages_delivered,
        "slow_consumers": counters.slow_consumers,
        "idle_kicks": counters.idle_kicks,
        "admin_kicks": counters.admin_kicks,
        "refused_full": counters.refused_full,
        "refused_per_address": counters.refused_per_address,
        "refused_unauthorized": counters.refused_unauthorized,
        "refused_unavailable": counters.refused_unavailable,
        "refused_proxy_header": counters.refused_proxy_header,
        "refused_banned": counters.refused_banned,
        "banned": counters.banned,
        "refused_muted": counters.refused_muted,
        "logins": counters.logins,
        "failed_logins": counters.failed_logins,
        "replaced": counters.replaced,
        "queued": counters.queued,
        # Rooms: on one server all of them; on a cluster node those with members here.
        "rooms": rooms_here(server),
        "room_members": sum(len(m.rooms) for m in server.hub.local_members()),
        "room_messages": counters.room_messages,
        # A cluster node holds no accounts itself: its cluster section counts Redis'.
        "accounts": server.hub.directory.accounts_held(),
        "bans_in_force": len(server.hub.bans.in_force(server.hub.wall_clock())),
        "muted_now": sum(1 for m in server.hub.local_members() if m.muted_until is not None),
        "backpressure_pauses": server.congestion.pauses,
        "backpressure_given_up": server.congestion.given_up,
        "store": store.description,
        "store_problem": store.problem,  # why it cannot write now; None while it can
    }


# Every admin request: its type -> its handler. A new request is one entry here and
# one function; what differs on a cluster node is the hub's directory's, not a branch.
REQUESTS: dict[str, Handler] = {
    "who": who,
    "kick": kick,
    "stats": stats_request,
    "history": history,
    "ban": moderation_requests.ban,
    "unban": moderation_requests.unban,
    "bans": moderation_requests.bans,
    "mute": moderation_requests.mute,
    "unmute": moderation_requests.unmute,
    "history_delete": moderation_requests.delete_history,
    "account_add": account_requests.add,
    "account_passwd": account_requests.passwd,
    "account_remove": account_requests.remove,
    "accounts": account_requests.list_accounts,
    "rooms": room_requests.rooms,
    "room_add": room_requests.add,
    "room_remove": room_requests.remove,
    "room_op": room_requests.op,
    "room_deop": room_requests.deop,
    "room_set": room_requests.set_room,
    "hook_add": hook_requests.add,
    "hook_add_outgoing": hook_requests.add_outgoing,
    "hooks": hook_requests.list_hooks,
    "hook_remove": hook_requests.remove,
}
