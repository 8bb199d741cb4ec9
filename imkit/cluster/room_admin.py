"""The administrator's rooms on a cluster (docs/rooms.md, "What the administrator can
do"): :class:`RedisRoomDirectory`, the room half of
:class:`~imkit.cluster.admin_answers.RedisDirectory`.

Every request is one call of ``room_admin.lua``, which makes the change in Redis and
writes what the rooms' members must be told to each room's stream, by "the
administrator", as an operator's change would be: every node tells its users in the
room. The replies are those of one server (:class:`~imkit.hub.directory.LocalDirectory`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imkit.cluster.connection import FAILURES
from imkit.cluster.rooms import as_list, settings_modes
from imkit.hub.backend import (
    ADMINISTRATOR,
    NO_SUCH_BAN,
    NOT_REGISTERED,
    ROOM_EXISTS,
    Reply,
)
from imkit.hub.directory import _audit, error_reply, no_such_room
from imkit.protocol import (
    BAD_REQUEST,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    NOT_ROOM_OPERATOR,
    UNAVAILABLE,
)
from imkit.rules.accounts import Account
from imkit.rules.names import name_key
from imkit.rules.rooms import MAX_ROOM_BANS, Change, Mask, mask_fields, room_key

if TYPE_CHECKING:
    from imkit.cluster.backend import RedisBackend
    from imkit.hub.members import Member

log = logging.getLogger("imkit.admin")


def _changes(changes: Sequence[Change]) -> str:
    """room_add's and room_set's changes (switches, k, l) for the script."""
    return json.dumps(
        [{"f": c.flag, "on": c.on, **({"a": c.arg} if c.arg is not None else {})} for c in changes]
    )


class RedisRoomDirectory:
    """The rooms of the whole cluster, for the admin socket; mixed into RedisDirectory."""

    node: RedisBackend

    if TYPE_CHECKING:

        def unreachable(self, error: BaseException) -> str: ...
        def user_row(self, user: dict[str, Any], local: dict[str, Member], now: float) -> Reply: ...

    async def _run(self, action: str, name: str, *args: Any) -> Any:
        """``room_admin.lua``'s reply for ``action`` on the room ``name``, or the error
        reply when Redis could not be asked (a dict)."""
        try:
            return await self.node.link.run_script(
                "room_admin", action, room_key(name), ADMINISTRATOR, *args
            )
        except FAILURES as error:
            return error_reply(UNAVAILABLE, self.unreachable(error))

    def rooms_held(self) -> int | None:
        return None  # in Redis: this node counts those with members here

    async def rooms(self) -> Reply:
        reply = await self._run("rooms", "#")
        if isinstance(reply, dict):
            return reply
        rows = []
        for raw, members, operators in json.loads(reply):
            settings = json.loads(raw)
            modes, args = settings_modes(settings, show_key=True)
            rows.append(
                {
                    "room": settings["name"],
                    "members": int(members),
                    "topic": settings.get("topic"),
                    "modes": modes,
                    "args": args,
                    "registered": bool(settings.get("registered")),
                    "secret": "s" in settings.get("flags", ""),
                    "operators": sorted(as_list(operators)),
                    "bans": _masks(settings, "bans"),
                    "exceptions": _masks(settings, "exceptions"),
                    "invite_exceptions": _masks(settings, "invite_exceptions"),
                }
            )
        rows.sort(key=lambda row: room_key(row["room"]))
        return {"type": "rooms", "rooms": rows}

    async def _change(
        self, action: str, name: str, topic: str | None, changes: Sequence[Change]
    ) -> Any:
        store = self.node.hub.store
        retain = int(store.retain_days * 86400 * 1000) if store.retain_days > 0 else 0
        return await self._run(action, name, name, json.dumps(topic), "", _changes(changes), retain)

    async def room_add(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        reply = await self._change("add", name, topic, changes)
        if isinstance(reply, dict):
            return reply
        if reply[0] == "exists":
            return error_reply(ROOM_EXISTS, f"{reply[1]} is registered already")
        settings = json.loads(reply[1])
        modes, _ = settings_modes(settings, show_key=True)
        shown = settings["name"]
        _audit(f"room {shown} registered", "room_add", by, room=shown)
        return {"type": "ok", "room": shown, "members": int(reply[2]), "modes": modes}

    async def room_remove(self, name: str, by: str) -> Reply:
        reply = await self._run("remove", name, "the room was removed")
        if isinstance(reply, dict):
            return reply
        if reply[0] == "none":
            return no_such_room(name)
        shown, removed = reply[1], int(reply[3])
        _audit(f"room {shown} removed ({removed} members)", "room_remove", by, room=shown)
        return {"type": "ok", "room": shown, "registered": bool(int(reply[2])), "removed": removed}

    async def room_op(self, name: str, account: Account, on: bool, by: str) -> Reply:
        reply = await self._run("op", name, account.key, "1" if on else "")
        if isinstance(reply, dict):
            return reply
        status = reply[0]
        if status == "none":
            return no_such_room(name)
        if status == "not_registered":
            message = (
                f"{reply[1]} is not registered: its operators are its members' (imkit room"
                " add makes accounts its operators)"
            )
            return error_reply(NOT_REGISTERED, message)
        if status == "not_op":
            message = f"{account.name} is not an operator of {reply[1]}"
            return error_reply(NOT_ROOM_OPERATOR, message)
        what = "now" if on else "no longer"
        message = f"{account.name} is {what} an operator of room {reply[1]}"
        _audit(message, "room_op" if on else "room_deop", by, room=reply[1])
        return {"type": "ok", "room": reply[1], "account": account.name, "operator": on}

    async def room_set(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        reply = await self._change("set", name, topic, changes)
        if isinstance(reply, dict):
            return reply
        if reply[0] == "none":
            return no_such_room(name)
        settings = json.loads(reply[1])
        letters, args = str(reply[3]), [str(a) for a in as_list(json.loads(reply[4]))]
        shown = settings["name"]
        changed = " ".join((letters, *args)) if letters else "no change of mode"
        _audit(f"room {shown} set: {changed}", "room_set", by, room=shown)
        modes, shown_args = settings_modes(settings, show_key=True)
        return {
            "type": "ok",
            "room": shown,
            "changes": letters,
            "args": args,
            "topic": settings.get("topic"),
            "modes": modes,
            "mode_args": shown_args,
        }

    def _members(self, found: list[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The members in a reply (conn record, membership; flat), in order of joining."""
        people = [
            (json.loads(record), json.loads(place))
            for record, place in zip(found[::2], found[1::2], strict=True)
        ]
        people.sort(key=lambda p: int(p[1].get("n", 0)))
        return people

    async def room_who(self, name: str) -> Reply:
        reply = await self._run("who", name)
        if isinstance(reply, dict):
            return reply
        if reply[0] == "none":
            return no_such_room(name)
        now = time.monotonic()
        local = {str(m.id): m for m in self.node.hub.members}
        rows = []
        for user, place in self._members(list(reply[2:])):
            row = self.user_row(user, local, now)
            row["operator"] = bool(place.get("o"))
            row["voice"] = bool(place.get("v"))
            rows.append(row)
        return {"type": "users", "room": reply[1], "users": rows}

    async def room_kick(self, name: str, user: str, reason: str | None, by: str) -> Reply:
        reply = await self._run("kick", name, name_key(user), reason or "")
        if isinstance(reply, dict):
            return reply
        status = reply[0]
        if status == "none":
            return no_such_room(name)
        if status == "no_user":
            return error_reply(NO_SUCH_USER, f"no user named {user!r} is online")
        if status == "not_member":
            return error_reply(NOT_IN_ROOM, f"{reply[1]} is not in {reply[2]}")
        target, shown = reply[1], reply[2]
        _audit(
            f"{target} kicked from room {shown}",
            "room_kick",
            by,
            room=shown,
            user=target,
            reason=reason,
        )
        return {"type": "ok", "name": target, "room": shown}

    async def room_ban(self, name: str, mask: Mask, on: bool, by: str) -> Reply:
        fields = json.dumps(mask_fields(mask, ADMINISTRATOR))
        reply = await self._run("ban", name, fields, "1" if on else "")
        if isinstance(reply, dict):
            return reply
        status = reply[0]
        if status == "none":
            return no_such_room(name)
        if status == "no_such_ban":
            return error_reply(NO_SUCH_BAN, f"{reply[1]} has no ban on {mask.text}")
        if status == "too_many_bans":
            message = f"a room has at most {MAX_ROOM_BANS} bans: lift one first"
            return error_reply(BAD_REQUEST, message)
        shown = reply[1]
        matching = []
        for user, _ in self._members(list(reply[2:])) if on else ():
            addr = user.get("real") or user["addr"]  # --hide-addresses: the real one
            if mask.matches(user["name"], user.get("account"), addr):
                matching.append(user["name"])
        what = "banned from" if on else "no longer banned from"
        action = "room_ban" if on else "room_unban"
        _audit(f"{mask.text} {what} room {shown}", action, by, room=shown)
        return {"type": "ok", "room": shown, "mask": mask.text, "matching": matching}


def _masks(settings: dict[str, Any], field: str) -> list[str]:
    """A room's list of masks (bans, exceptions, invite_exceptions) as its masks' texts."""
    return [str(b["mask"]) for b in as_list(settings.get(field))]
