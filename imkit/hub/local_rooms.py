"""Rooms on one server (docs/rooms.md): :class:`LocalRooms`, the room half of
:class:`~imkit.hub.local.LocalBackend`. Each room's settings and members are a
:class:`~imkit.rules.rooms.RoomState` here, asked and changed at once; registered rooms
and accounts' rooms are kept in the store. A cluster node's rooms are Redis'
(``imkit.cluster.rooms``), which makes the same decisions in its scripts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imkit.hub.members import Member
from imkit.hub.publishing import LocalPublishing
from imkit.hub.rooms import Room, fan_out
from imkit.protocol import (
    ALREADY_IN_ROOM,
    BAD_REQUEST,
    LOGIN_REQUIRED,
    NO_SUCH_ROOM,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    NOT_ROOM_OPERATOR,
    TOO_MANY_ROOMS,
    Error,
    Event,
    Invite,
    Invited,
    Joined,
    JoinRoom,
    ListRooms,
    Mode,
    ModesChanged,
    ModesInfo,
    PartRoom,
    RequestId,
    RoomInfo,
    RoomJoin,
    RoomKick,
    RoomKicked,
    RoomList,
    RoomMessage,
    RoomMode,
    RoomOk,
    RoomPart,
    Topic,
    TopicInfo,
    UserInfo,
    UserList,
    Who,
)
from imkit.rules.names import name_key
from imkit.rules.rooms import Change, RoomState, room_key, told_arg

if TYPE_CHECKING:
    from imkit.hub.core import Hub

log = logging.getLogger("imkit.hub")

# What a user is told when the rules refuse it (imkit.rules.rooms' codes).
REFUSALS = {
    "banned_from_room": "you are banned from {room}",
    "invite_only": "{room} is invite-only: an operator must invite you",
    "bad_key": "the key to {room} is missing or wrong",
    "room_full": "{room} is full",
    "not_room_operator": "only {room}'s operators may do that",
    "not_in_room": "you are not in {room}",
    "muted": "{room} is moderated: only its operators and users with a voice speak",
}


def refused(rid: RequestId, code: str, room: str) -> Error:
    return Error(rid, code, REFUSALS[code].format(room=room), room)


def _ignore(problem: str | None) -> None:
    pass  # a registered room's settings: logged by the store when they cannot be kept


class LocalRooms(LocalPublishing):
    """Every room of one server; mixed into LocalBackend, which gives it ``hub``."""

    hub: Hub
    states: dict[str, RoomState]

    def _init_rooms(self) -> None:
        self.states = {}

    # ---------------------------------------------------------------- lookups

    def _state(self, key: str) -> RoomState | None:
        state = self.states.get(key)
        if state is None:
            fields = self.hub.store.rooms.get(key)
            if fields is not None:
                state = self.states[key] = RoomState.from_fields(fields)
        return state

    def _visible(self, member: Member, key: str, rid: RequestId, name: str) -> RoomState | None:
        """The room ``key``, or None once ``member`` has been told it does not exist
        (a secret room is not, to a non-member)."""
        state = self._state(key)
        if state is None or ("s" in state.flags and member.id not in state.members):
            self.hub.send(member, Error(rid, NO_SUCH_ROOM, f"there is no room {name}", name))
            return None
        return state

    def _room(self, key: str, name: str) -> Room:
        room = self.hub.rooms.get(key)
        if room is None:
            room = self.hub.rooms[key] = Room(name, key)
        return room

    def _save(self, key: str, state: RoomState) -> None:
        if state.registered:
            self.hub.store.save_room(key, state.fields(), _ignore)

    # ------------------------------------------------------------- membership

    def lobby(self, member: Member, rid: RequestId, *, inside: bool) -> bool:
        """``member`` joins the lobby again, or leaves it; the lobby is told."""
        hub = self.hub
        event: Event
        if inside:
            member.in_lobby = True
            event = RoomJoin(hub.lobby, member.name, member.shown_addr, member.account)
        else:
            member.in_lobby = False
            event = RoomPart(hub.lobby, member.name, member.shown_addr)
        others = [m for m in hub._members.values() if m.in_lobby and m is not member]
        fan_out(hub, others, event)
        return True

    def room_join(self, member: Member, command: JoinRoom, key: str) -> None:
        self._join(member, command.room, key, command.id, command.key, remembered=False)

    def _join(
        self,
        member: Member,
        name: str,
        key: str,
        rid: RequestId,
        room_key_given: str | None,
        *,
        remembered: bool,
    ) -> bool:
        hub = self.hub
        state = self._state(key)
        if key in member.rooms and state is not None:
            hub.send(member, self._joined(rid, state, member))
            return True
        if len(member.rooms) >= hub.max_rooms_per_user:
            message = f"you are in {hub.max_rooms_per_user} rooms already: leave one first"
            hub.send(member, Error(rid, TOO_MANY_ROOMS, message, name))
            return False
        creator = state is None
        if state is None:
            problem = self._creation_problem(member, name, rid)
            if problem is not None:
                hub.send(member, problem)
                return False
            state = RoomState(name, created=hub.wall_clock())
        else:
            code = state.admission(
                member.name, member.account, member.addr, room_key_given, remembered=remembered
            )
            if code is not None:
                hub.send(member, refused(rid, code, state.name))
                return False
        self.states[key] = state
        state.add(member.id, member.account, creator=creator)
        room = self._room(key, state.name)
        joining = RoomJoin(state.name, member.name, member.shown_addr, member.account)
        fan_out(hub, room.members.values(), joining)
        room.members[member.id] = member
        member.rooms[key] = room
        hub.send(member, self._joined(rid, state, member))
        if member.account is not None:
            hub.store.remember_room(name_key(member.account), key, state.name)
        return True

    def _creation_problem(self, member: Member, name: str, rid: RequestId) -> Error | None:
        hub = self.hub
        policy = hub.room_creation
        if policy == "admin":
            message = f"there is no room {name}, and only the administrator makes rooms here"
            return Error(rid, NO_SUCH_ROOM, message, name)
        if policy == "accounts" and member.account is None:
            message = f"there is no room {name}; log in to make one"
            return Error(rid, LOGIN_REQUIRED, message, name)
        if len(self.states) >= hub.max_rooms:
            message = f"this server has {hub.max_rooms} rooms already"
            return Error(rid, TOO_MANY_ROOMS, message, name)
        return None

    def _joined(self, rid: RequestId, state: RoomState, member: Member) -> Joined:
        modes, _ = state.modes(show_key=True)
        return Joined(
            rid, state.name, state.topic, modes, len(state.members), state.is_operator(member.id)
        )

    def rejoin_rooms(self, member: Member, account_key: str) -> None:
        """A logged-in account is put back in the rooms it was in (its ``joined``
        events have no id); a room it may no longer enter (a ban) is forgotten."""
        store = self.hub.store
        for key, name in list(store.account_rooms.get(account_key, {}).items()):
            if not member.online:
                return
            if not self._join(member, name, key, None, None, remembered=True):
                store.forget_room(account_key, key)
            elif member.mode is Mode.IRC:  # its names (353, 366), as after its own JOIN
                self.room_who(member, Who(id=None, room=name), key)

    def room_part(self, member: Member, command: PartRoom, key: str) -> None:
        room = member.rooms.get(key)
        if room is None:
            self.hub.send(member, refused(command.id, NOT_IN_ROOM, command.room))
            return
        self._drop(member, key)
        fan_out(
            self.hub,
            room.members.values(),
            RoomPart(room.name, member.name, member.shown_addr, command.reason),
        )
        self.hub.send(member, RoomOk(command.id, room.name, f"you have left {room.name}"))
        if member.account is not None:
            self.hub.store.forget_room(name_key(member.account), key)

    def _drop(self, member: Member, key: str) -> None:
        """``member`` is no longer in the room ``key``; an unregistered room left empty
        ends."""
        room = member.rooms.pop(key, None)
        if room is not None:
            room.members.pop(member.id, None)
            if not room.members:
                del self.hub.rooms[key]
        state = self.states.get(key)
        if state is not None:
            state.members.pop(member.id, None)
            if not state.members and not state.registered:
                del self.states[key]

    def leave_rooms(self, member: Member) -> None:
        """``member`` went offline (its offline line told the rooms' members)."""
        for key in list(member.rooms):
            self._drop(member, key)

    # ---------------------------------------------------------------- talking

    def room_message(self, member: Member, command: RoomMessage, key: str) -> None:
        hub = self.hub
        state = self._visible(member, key, command.id, command.room)
        if state is None:
            return
        code = state.speaking(member.id)
        if code is not None:
            hub.send(member, refused(command.id, code, state.name))
            return
        room = hub.rooms.get(key)
        members = room.members.values() if room is not None else ()
        if self._publish(member, command.id, command.text, command.notice, state.name, members):
            hub.stats.room_messages += 1

    # -------------------------------------------------------------- asking

    def room_list(self, member: Member, command: ListRooms) -> None:
        hub = self.hub
        lobby = sum(1 for m in hub._members.values() if m.in_lobby)
        listed = [RoomInfo(hub.lobby, lobby, None)]
        for key in hub.store.rooms:
            self._state(key)
        for state in sorted(self.states.values(), key=lambda s: room_key(s.name)):
            if "s" in state.flags and member.id not in state.members:
                continue
            listed.append(RoomInfo(state.name, len(state.members), state.topic))
        hub.reply(member, RoomList(command.id, tuple(listed)))

    def room_who(self, member: Member, command: Who, key: str) -> None:
        hub = self.hub
        state = self._visible(member, key, command.id, command.room or "")
        if state is None:
            return
        room = hub.rooms.get(key)
        users = []
        for other in room.members.values() if room is not None else ():
            place = state.members.get(other.id)
            users.append(
                UserInfo(
                    other.name,
                    other.shown_addr,
                    other.account,
                    place is not None and place.operator,
                    place is not None and place.voice,
                )
            )
        hub.reply(member, UserList(command.id, tuple(users), state.name, "s" in state.flags))

    # ------------------------------------------------------------ operators

    def room_topic(self, member: Member, command: Topic, key: str) -> None:
        hub = self.hub
        state = self._visible(member, key, command.id, command.room)
        if state is None:
            return
        if command.topic is None:
            reply = TopicInfo(command.id, state.name, state.topic, state.topic_by, state.topic_time)
            hub.send(member, reply)
            return
        code = state.may_set_topic(member.id)
        if code is not None:
            hub.send(member, refused(command.id, code, state.name))
            return
        state.topic = command.topic or None
        state.topic_by, state.topic_time = member.name, hub.wall_clock()
        self._save(key, state)
        event = TopicInfo(None, state.name, state.topic, member.name, state.topic_time, True)
        self._tell_room(key, event)
        hub.send(member, RoomOk(command.id, state.name))

    def _tell_room(self, key: str, event: Event) -> None:
        room = self.hub.rooms.get(key)
        if room is not None:
            fan_out(self.hub, room.members.values(), event)

    def _operator(self, member: Member, key: str, rid: RequestId, name: str) -> RoomState | None:
        """The room ``key`` when ``member`` is one of its operators (else it is told)."""
        state = self._visible(member, key, rid, name)
        if state is None:
            return None
        if member.id not in state.members:
            self.hub.send(member, refused(rid, NOT_IN_ROOM, state.name))
            return None
        if not state.is_operator(member.id):
            self.hub.send(member, refused(rid, NOT_ROOM_OPERATOR, state.name))
            return None
        return state

    def _member_named(
        self, member: Member, state: RoomState, key: str, name: str, rid: RequestId
    ) -> Member | None:
        target = self.hub.find(name)
        if target is None:
            message = f"no user named {name!r} is online"
            self.hub.send(member, Error(rid, NO_SUCH_USER, message, name))
            return None
        if key not in target.rooms:
            message = f"{target.name} is not in {state.name}"
            self.hub.send(member, Error(rid, NOT_IN_ROOM, message, state.name))
            return None
        return target

    def room_kick(self, member: Member, command: RoomKick, key: str) -> None:
        state = self._operator(member, key, command.id, command.room)
        if state is None:
            return
        target = self._member_named(member, state, key, command.name, command.id)
        if target is None:
            return
        self.kick_from_room(target, key, member.name, command.reason)
        self.hub.send(member, RoomOk(command.id, state.name))

    def kick_from_room(self, target: Member, key: str, by: str, reason: str | None) -> None:
        """``target`` is taken out of the room ``key`` (an operator's or the
        administrator's kick); every member is told, ``target`` too."""
        room = target.rooms.get(key)
        if room is None:
            return
        self._tell_room(key, RoomKicked(room.name, target.name, by, reason))
        self._drop(target, key)
        if target.account is not None:
            self.hub.store.forget_room(name_key(target.account), key)

    def room_invite(self, member: Member, command: Invite, key: str) -> None:
        hub = self.hub
        state = self._visible(member, key, command.id, command.room)
        if state is None:
            return
        if member.id not in state.members:
            hub.send(member, refused(command.id, NOT_IN_ROOM, state.name))
            return
        if "i" in state.flags and not state.is_operator(member.id):
            hub.send(member, refused(command.id, NOT_ROOM_OPERATOR, state.name))
            return
        target = hub.find(command.name)
        if target is None:
            message = f"no user named {command.name!r} is online"
            hub.send(member, Error(command.id, NO_SUCH_USER, message, command.name))
            return
        if key in target.rooms:
            message = f"{target.name} is in {state.name} already"
            hub.send(member, Error(command.id, ALREADY_IN_ROOM, message, state.name))
            return
        state.invite(name_key(target.name))
        hub.send(target, Invited(state.name, member.name, member.shown_addr))
        hub.send(member, RoomOk(command.id, state.name, f"you invited {target.name}"))

    def room_mode(self, member: Member, command: RoomMode, key: str) -> None:
        hub = self.hub
        if not command.changes:
            state = self._visible(member, key, command.id, command.room)
            if state is None:
                return
            inside = member.id in state.members
            modes, args = state.modes(show_key=inside)
            masks = tuple(state.masks(command.listing)) if command.listing else None
            info = ModesInfo(
                command.id,
                state.name,
                modes,
                tuple(args),
                masks,
                state.created,
                listing=command.listing or "b",
            )
            hub.reply(member, info)
            return
        state = self._operator(member, key, command.id, command.room)
        if state is None:
            return
        too_many = state.bans_problem(command.changes)
        if too_many is not None:
            hub.send(member, Error(command.id, BAD_REQUEST, too_many, state.name))
            return
        targets: list[Member | None] = []
        for change in command.changes:  # every name first: all of them, or none
            if change.flag in "ov":
                target = self._member_named(member, state, key, change.arg or "", command.id)
                if target is None:
                    return
                targets.append(target)
            else:
                targets.append(None)
        letters, args, sign = "", [], None
        for change, target in zip(command.changes, targets, strict=True):
            if target is not None:
                place = state.members[target.id]
                before = place.operator if change.flag == "o" else place.voice
                if before == change.on:
                    continue
                if change.flag == "o":
                    place.operator = change.on
                else:
                    place.voice = change.on
                arg: str | None = target.name
            elif state.apply(change, member.name):
                arg = change.arg if told_arg(change.flag, change.on) else None
            else:
                continue
            if sign is not change.on:
                letters += "+" if change.on else "-"
                sign = change.on
            letters += change.flag
            if arg is not None:
                args.append(arg)
        self._save(key, state)
        if letters:
            self._tell_room(key, ModesChanged(state.name, member.name, letters, tuple(args)))
        hub.send(member, RoomOk(command.id, state.name))

    # ------------------------------------------------------ the administrator's
    # (imkit.hub.directory.LocalDirectory, which keeps registered rooms in the store
    # first); ``by`` is who the users are told made the change.

    def admin_rows(self) -> list[dict[str, Any]]:
        """Every room, secret and registered ones without members too, by key."""
        store = self.hub.store
        for key in store.rooms:
            self._state(key)
        rows = []
        for _, state in sorted(self.states.items()):
            modes, args = state.modes(show_key=True)
            operators = [
                account.name if (account := store.accounts.get(key)) is not None else key
                for key in sorted(state.operators)
            ]
            rows.append(
                {
                    "room": state.name,
                    "members": len(state.members),
                    "topic": state.topic,
                    "modes": modes,
                    "args": args,
                    "registered": state.registered,
                    "secret": "s" in state.flags,
                    "operators": operators,
                    "bans": list(state.bans),
                    "exceptions": list(state.exceptions),
                    "invite_exceptions": list(state.invite_exceptions),
                }
            )
        return rows

    def members_here(self, key: str) -> list[Member]:
        """The members of the room ``key`` connected here, in order of joining."""
        room = self.hub.rooms.get(key)
        return [] if room is None else list(room.members.values())

    def admin_change(
        self, key: str, state: RoomState, topic: str | None, changes: Sequence[Change], by: str
    ) -> tuple[str, list[str]]:
        """Set the topic (None: unchanged, "": cleared) and make ``changes`` (not o or
        v) in ``state``, the room ``key``'s (a registered room's trial copy too: then
        nobody is told); the room is told of what changed, which is returned (+m-i and
        its arguments)."""
        told = self.states.get(key) is state
        if topic is not None and (topic or None) != state.topic:
            state.topic = topic or None
            state.topic_by, state.topic_time = by, self.hub.wall_clock()
            if told:
                event = TopicInfo(None, state.name, state.topic, by, state.topic_time, True)
                self._tell_room(key, event)
        letters, args, sign = "", [], None
        for change in changes:
            if not state.apply(change, by):
                continue
            if sign is not change.on:
                letters += "+" if change.on else "-"
                sign = change.on
            letters += change.flag
            if change.arg is not None and told_arg(change.flag, change.on):
                args.append(change.arg)
        if letters and told:
            self._tell_room(key, ModesChanged(state.name, by, letters, tuple(args)))
        return letters, args

    def admin_operator(
        self, key: str, state: RoomState, account_key: str, on: bool, by: str
    ) -> None:
        """The account ``account_key`` is (``on``) or is no longer an operator of the
        room; its users in it now are told so with the room (+o/-o)."""
        (state.operators.add if on else state.operators.discard)(account_key)
        names = []
        for member in self.members_here(key):
            place = state.members.get(member.id)
            if member.account is None or name_key(member.account) != account_key:
                continue
            if place is not None and place.operator != on:
                place.operator = on
                names.append(member.name)
        if names:
            letters = ("+" if on else "-") + "o" * len(names)
            self._tell_room(key, ModesChanged(state.name, by, letters, tuple(names)))

    def admin_end(self, key: str, by: str, reason: str) -> int:
        """The room ``key`` ends: each member is told it was kicked (of itself only)
        and taken out, the room is forgotten by every account that would be put back
        in it at login; how many members it had here."""
        hub, store = self.hub, self.hub.store
        state = self.states.get(key)
        if state is not None:
            state.registered = False
        members = self.members_here(key)
        for member in members:
            hub.send(member, RoomKicked(member.rooms[key].name, member.name, by, reason))
            self._drop(member, key)
        self.states.pop(key, None)
        for account_key, rooms in list(store.account_rooms.items()):
            if key in rooms:
                store.forget_room(account_key, key)
        return len(members)
