"""The admin socket's view of one server's chat: :class:`LocalDirectory`, the
:class:`~imkit.hub.backend.Directory` of a server on its own (its users are the hub's,
its bans and accounts are in its store). A cluster node's is
``imkit.cluster.admin_answers.RedisDirectory``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from imkit.hub.backend import (
    ADMINISTRATOR,
    NO_SUCH_ACCOUNT,
    NO_SUCH_BAN,
    NOT_REGISTERED,
    ROOM_EXISTS,
    Reply,
)
from imkit.hub.local_rooms import LocalRooms
from imkit.protocol import (
    BAD_REQUEST,
    NO_SUCH_ROOM,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    NOT_ROOM_OPERATOR,
    UNAVAILABLE,
    ModeChange,
    iso_time,
)
from imkit.rules.accounts import Account
from imkit.rules.bans import Ban
from imkit.rules.names import name_key
from imkit.rules.rooms import Change, Mask, RoomState, room_key
from imkit.store.base import awaited

if TYPE_CHECKING:
    from imkit.hub.core import Hub
    from imkit.hub.members import Member

log = logging.getLogger("imkit.admin")

# How long a change waits for the store to keep it before the request is answered.
STORE_TIMEOUT = 4.0


def error_reply(code: str, message: str) -> Reply:
    return {"type": "error", "code": code, "message": message}


def no_such_room(name: str) -> Reply:
    return error_reply(NO_SUCH_ROOM, f"there is no room {name}")


def _audit(message: str, action: str, by: str, **extra: Any) -> None:
    """One log line for an administrator's change to a room (who made it: ``by``):
    event ``room_admin``, its ``action`` (room_add, room_remove, room_op, room_deop,
    room_set, room_kick, room_ban, room_unban) and ``room``."""
    fields = {"action": action, "by": by, **extra}
    log.info("%s by %s", message, by, extra={"event": "room_admin", **fields})


async def kept(ask: Any) -> str | None:
    """What the store said to a change (None: kept), or why it said nothing."""
    try:
        problem: str | None = await awaited(ask, STORE_TIMEOUT)
    except TimeoutError:
        return f"the store did not answer within {STORE_TIMEOUT:g}s"
    return problem


def user_rows(hub: Hub, members: list[Member] | None = None) -> list[dict[str, Any]]:
    """``imkit who``'s rows for the users of this server, in order of arrival (or for
    ``members``, in their order)."""
    now = time.monotonic()
    members = hub.members if members is None else members
    rows = [
        {
            "name": m.name,
            "addr": m.addr,
            "account": m.account,
            "mode": m.mode.value if m.mode.value in ("json", "irc") else "text",
            "connected_at": iso_time(m.connected_wall),
            "connected_s": round(now - m.connected_at, 3),
            "idle_s": round(now - m.last_active, 3),
        }
        for m in members
    ]
    if hub.hide_addresses:  # what the users see in its place
        for row, member in zip(rows, members, strict=True):
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

    # --------------------------------------------------------------------- rooms

    @property
    def _rooms(self) -> LocalRooms:
        backend = self.hub.backend
        assert isinstance(backend, LocalRooms)  # a server on its own: LocalBackend
        return backend

    def rooms_held(self) -> int | None:
        rooms = self._rooms
        return len(rooms.states.keys() | self.hub.store.rooms.keys())

    async def rooms(self) -> Reply:
        return {"type": "rooms", "rooms": self._rooms.admin_rows()}

    async def room_add(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is not None and state.registered:
            return error_reply(ROOM_EXISTS, f"{state.name} is registered already")
        trial = RoomState(name) if state is None else RoomState.from_fields(state.fields())
        trial.registered = True
        rooms.admin_change(key, trial, topic, changes, ADMINISTRATOR)
        problem = await kept(partial(self.hub.store.save_room, key, trial.fields()))
        if problem is not None:
            return error_reply(UNAVAILABLE, problem)
        state = rooms.states.get(key)  # made by a join while the store wrote, maybe
        if state is None:
            state = rooms.states[key] = RoomState.from_fields(trial.fields())
        else:
            state.registered = True
            rooms.admin_change(key, state, topic, changes, ADMINISTRATOR)
        modes, args = state.modes(show_key=True)
        _audit(f"room {state.name} registered", "room_add", by, room=state.name)
        return {"type": "ok", "room": state.name, "members": len(state.members), "modes": modes}

    async def room_remove(self, name: str, by: str) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        shown, registered = state.name, state.registered
        if registered:
            problem = await kept(partial(self.hub.store.delete_room, key))
            if problem is not None:
                return error_reply(UNAVAILABLE, problem)
        removed = rooms.admin_end(key, ADMINISTRATOR, "the room was removed")
        _audit(f"room {shown} removed ({removed} members)", "room_remove", by, room=shown)
        return {"type": "ok", "room": shown, "registered": registered, "removed": removed}

    async def room_op(self, name: str, account: Account, on: bool, by: str) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        if not state.registered:
            message = (
                f"{state.name} is not registered: its operators are its members' (imkit room"
                " add makes accounts its operators)"
            )
            return error_reply(NOT_REGISTERED, message)
        if not on and account.key not in state.operators:
            message = f"{account.name} is not an operator of {state.name}"
            return error_reply(NOT_ROOM_OPERATOR, message)
        trial = RoomState.from_fields(state.fields())
        (trial.operators.add if on else trial.operators.discard)(account.key)
        problem = await kept(partial(self.hub.store.save_room, key, trial.fields()))
        if problem is not None:
            return error_reply(UNAVAILABLE, problem)
        state = rooms._state(key)
        if state is None:  # removed while the store wrote
            return no_such_room(name)
        rooms.admin_operator(key, state, account.key, on, ADMINISTRATOR)
        what = "now" if on else "no longer"
        message = f"{account.name} is {what} an operator of room {state.name}"
        _audit(message, "room_op" if on else "room_deop", by, room=state.name)
        return {"type": "ok", "room": state.name, "account": account.name, "operator": on}

    async def room_set(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        if state.registered:  # kept first: nothing changes that a restart would undo
            trial = RoomState.from_fields(state.fields())
            rooms.admin_change(key, trial, topic, changes, ADMINISTRATOR)
            problem = await kept(partial(self.hub.store.save_room, key, trial.fields()))
            if problem is not None:
                return error_reply(UNAVAILABLE, problem)
            state = rooms._state(key)
            if state is None:
                return no_such_room(name)
        letters, args = rooms.admin_change(key, state, topic, changes, ADMINISTRATOR)
        changed = " ".join((letters, *args)) if letters else "no change of mode"
        _audit(f"room {state.name} set: {changed}", "room_set", by, room=state.name)
        modes, shown_args = state.modes(show_key=True)
        return {
            "type": "ok",
            "room": state.name,
            "changes": letters,
            "args": args,
            "topic": state.topic,
            "modes": modes,
            "mode_args": shown_args,
        }

    async def room_who(self, name: str) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        members = rooms.members_here(key)
        rows = user_rows(self.hub, members)
        for row, member in zip(rows, members, strict=True):
            place = state.members.get(member.id)
            row["operator"] = place is not None and place.operator
            row["voice"] = place is not None and place.voice
        return {"type": "users", "room": state.name, "users": rows}

    async def room_kick(self, name: str, user: str, reason: str | None, by: str) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        target = self.hub.find(user)
        if target is None:
            return error_reply(NO_SUCH_USER, f"no user named {user!r} is online")
        if key not in target.rooms:
            return error_reply(NOT_IN_ROOM, f"{target.name} is not in {state.name}")
        rooms.kick_from_room(target, key, ADMINISTRATOR, reason)
        _audit(
            f"{target.name} kicked from room {state.name}",
            "room_kick",
            by,
            room=state.name,
            user=target.name,
            reason=reason,
        )
        return {"type": "ok", "name": target.name, "room": state.name}

    async def room_ban(self, name: str, mask: Mask, on: bool, by: str) -> Reply:
        rooms, key = self._rooms, room_key(name)
        state = rooms._state(key)
        if state is None:
            return no_such_room(name)
        if not on and mask.text not in state.bans:
            return error_reply(NO_SUCH_BAN, f"{state.name} has no ban on {mask.text}")
        change = [ModeChange("b", on, mask.text)]
        too_many = state.bans_problem(change)
        if too_many is not None:
            return error_reply(BAD_REQUEST, too_many)
        if state.registered:
            trial = RoomState.from_fields(state.fields())
            rooms.admin_change(key, trial, None, change, ADMINISTRATOR)
            problem = await kept(partial(self.hub.store.save_room, key, trial.fields()))
            if problem is not None:
                return error_reply(UNAVAILABLE, problem)
            state = rooms._state(key)
            if state is None:
                return no_such_room(name)
        rooms.admin_change(key, state, None, change, ADMINISTRATOR)
        matching = [
            m.name
            for m in rooms.members_here(key)
            if on and mask.matches(m.name, m.account, m.addr)
        ]
        what = "banned from" if on else "no longer banned from"
        action = "room_ban" if on else "room_unban"
        _audit(f"{mask.text} {what} room {state.name}", action, by, room=state.name)
        return {"type": "ok", "room": state.name, "mask": mask.text, "matching": matching}
