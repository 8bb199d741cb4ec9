"""The answers to admin requests, as the admin socket (imkit.operator.admin_socket)
receives them:

    {"type":"who"}                         -> {"type":"users","users":[...]}
    {"type":"kick","name":N,"reason":R}    -> {"type":"ok","name":N} | error no_such_user
    {"type":"stats"}                       -> {"type":"stats", counters..., store...}
    {"type":"history","limit":N,"before":M} -> {"type":"history","messages":[...],"more":B}

and the moderation (imkit.operator.moderation_requests) and account
(imkit.operator.account_requests) requests.

Every request is answered at once but ``history``, which waits (a bounded time) for the
store to read it.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any, Protocol

from imkit.hub.core import Hub
from imkit.hub.credentials import Logins
from imkit.operator import account_requests, moderation_requests
from imkit.protocol import (
    BAD_REQUEST,
    UNAVAILABLE,
    History,
    Invalid,
    iso_time,
    parse_json_request,
)
from imkit.protocol.admin import MAX_REQUEST
from imkit.store.base import awaited
from imkit.transport.backpressure import Congestion

log = logging.getLogger("imkit.admin")

# How long a history request waits for the store (a disk that hangs): less than the
# client's CLIENT_TIMEOUT (imkit.client.admin), so that the operator is told why rather
# than that nobody answered.
HISTORY_TIMEOUT = 4.0


class Administered(Protocol):
    """What the admin socket needs of the server it serves (imkit.server.Server)."""

    hub: Hub
    logins: Logins
    started_at: float
    congestion: Congestion

    @property
    def connections_now(self) -> int: ...


def json_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def error_reply(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


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
    if request.get("type") == "history":
        return await history(server, request)
    if request.get("type") in moderation_requests.REQUESTS:
        return await moderation_requests.answer(server.hub, request, by)
    if request.get("type") in account_requests.REQUESTS:
        return await account_requests.answer(server.hub, server.logins.hasher, request, by)
    hub = server.hub
    if hub.cluster_wide:  # answered from the cluster's Redis (imkit.cluster.admin_answers)
        return await _cluster_answer(server, request, by)
    return answer_now(server, request, by)


async def _cluster_answer(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    # Imported only in a cluster: one node needs no Redis client.
    from imkit.cluster import admin_answers as cluster_admin
    from imkit.cluster.hub import ClusterHub

    hub = server.hub
    assert isinstance(hub, ClusterHub)
    kind = request.get("type")
    if kind == "who":
        return await cluster_admin.who(hub)
    if kind == "kick":
        name, reason = request.get("name"), request.get("reason")
        if not isinstance(name, str) or not (reason is None or isinstance(reason, str)):
            return error_reply(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
        reply = await cluster_admin.kick(hub, name, reason)
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
    if kind == "stats":
        section = await cluster_admin.cluster_stats(hub)
        return {"type": "stats", **stats(server), "node": hub.node, "cluster": section}
    return answer_now(server, request, by)


def answer_now(server: Administered, request: dict[str, Any], by: str = "admin") -> dict[str, Any]:
    """The reply to a request that needs nothing but the hub: who, stats, kick."""
    kind = request.get("type")
    if kind == "who":
        return {"type": "users", "users": users(server)}
    if kind == "stats":
        return {"type": "stats", **stats(server), "cluster": None}
    if kind == "kick":
        name, reason = request.get("name"), request.get("reason")
        if not isinstance(name, str) or not (reason is None or isinstance(reason, str)):
            return error_reply(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
        member = server.hub.kick(name, reason)
        if member is None:
            return error_reply("no_such_user", f"no user named {name!r} is online")
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
    return error_reply(BAD_REQUEST, f"unknown request type {kind!r}")


async def history(server: Administered, request: dict[str, Any]) -> dict[str, Any]:
    """Past public messages, oldest first, as the chat's history request gives them."""
    # The same request as a chat client's, checked by the same parser.
    command = parse_json_request({**request, "id": None})
    if not isinstance(command, History):
        message = command.message if isinstance(command, Invalid) else "not a history request"
        return error_reply(BAD_REQUEST, f"history: {message}")
    limit, before = command.limit, command.before
    try:
        page = await awaited(partial(server.hub.store.history, limit, before), HISTORY_TIMEOUT)
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
        }
        for message in page.messages
    ]
    return {"type": "history", "messages": messages, "more": page.more}


def users(server: Administered) -> list[dict[str, Any]]:
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
        for m in server.hub.members
    ]
    if server.hub.hide_addresses:  # what the users see in its place
        for row, member in zip(rows, server.hub.members, strict=True):
            row["pseudonym"] = member.shown_addr
    return rows


def stats(server: Administered) -> dict[str, Any]:
    counters = server.hub.stats
    store = server.hub.store
    return {
        "uptime_s": round(time.monotonic() - server.started_at, 3),
        "users_online": len(server.hub),
        "connections_now": server.connections_now,
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
        # A cluster node holds no accounts itself: its cluster section counts Redis'.
        "accounts": None if server.hub.cluster_wide else len(store.accounts),
        "bans_in_force": len(server.hub.bans.in_force(server.hub.wall_clock())),
        "muted_now": sum(1 for m in server.hub.local_members() if m.muted_until is not None),
        "backpressure_pauses": server.congestion.pauses,
        "backpressure_given_up": server.congestion.given_up,
        "store": store.description,
        "store_problem": store.problem,  # why it cannot write now; None while it can
    }
