"""Rooms on a cluster node (docs/rooms.md, docs/cluster.md "Rooms"): :class:`RedisRooms`,
the room half of :class:`~imkit.cluster.backend.RedisBackend`.

Redis decides, as it does for names: each room request is one script
(``imkit/cluster/lua/room_*.lua``) that makes the decisions
:class:`~imkit.rules.rooms.RoomState` makes on one server and writes the room's events to
the room's own stream ``P:room:KEY:log``. The node keeps only what its users need:
``hub.rooms`` (each room with members here, by key) and the reader's set of streams,
which holds exactly those rooms' (:meth:`RedisRooms._stop_reading`).

A join: the script answers the joiner (``Joined``) and returns the id of its join event,
which the others read in the stream. A node that did not read the room starts after
that id. A node that did (others of its users are in the room) may read the join event
before or after the reply comes back: the joiner is in the room here from its own join
event on, and is told ``Joined`` before anything that followed it (:class:`Entering`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imkit.cluster.edits import apply_amend
from imkit.cluster.terms import _ignore, event_message
from imkit.hub.local_rooms import refused
from imkit.hub.members import Member
from imkit.hub.rooms import Room, fan_out
from imkit.protocol import (
    BAD_REQUEST,
    LOGIN_REQUIRED,
    NO_SUCH_ROOM,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    TOO_MANY_ROOMS,
    ChatMessage,
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
    Ok,
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
from imkit.rules.rooms import (
    LIST_NAMES,
    LISTS,
    Mask,
    address_fields,
    mask_fields,
    modes_text,
    parse_mask,
    room_key,
    too_many_masks,
)

if TYPE_CHECKING:
    from imkit.cluster.link import ClusterLink
    from imkit.hub.core import Hub


@dataclass(slots=True)
class Entering:
    """A join sent to Redis, by a user of this node, of a room this node may read
    already: its reply (``replied``) and its join event (``seen``) may come back in
    either order. Events of the room after its join event, before the reply: ``early``,
    told after the ``Joined``."""

    rid: RequestId
    pending: int = 1  # its joins in flight (a user may ask twice before an answer)
    replied: bool = False
    seen: bool = False
    early: list[Event] = field(default_factory=list)


def as_list(value: Any) -> list[Any]:
    """A list from a script's JSON (Lua's cjson writes an empty table as ``{}``)."""
    return value if isinstance(value, list) else []


def joined(rid: RequestId, settings: dict[str, Any], members: int, operator: bool) -> Joined:
    modes, _ = settings_modes(settings, show_key=True)
    return Joined(rid, settings["name"], settings.get("topic"), modes, members, operator)


def settings_modes(settings: dict[str, Any], *, show_key: bool) -> tuple[str, list[str]]:
    limit = settings.get("limit")
    return modes_text(
        settings.get("flags", ""),
        settings.get("key"),
        None if limit is None else int(limit),
        show_key=show_key,
    )


class RedisRooms:
    """The rooms of a cluster node; mixed into RedisBackend (see the module docstring)."""

    hub: Hub
    link: ClusterLink
    local: dict[int, Member]
    entering: dict[tuple[int, str], Entering]
    on_published: Callable[[ChatMessage], None] | None = None  # Backend.on_published

    if TYPE_CHECKING:

        def _refuse_unavailable(self, member: Member, rid: RequestId) -> bool: ...
        def _failed(self, member: Member, rid: RequestId, reply: Any, what: str) -> bool: ...

    def _init_rooms(self) -> None:
        self.entering = {}

    def published(
        self, member: Member, text: str, notice: bool, msgid: str, ms: Any, room: str | None
    ) -> None:
        """Redis took ``member``'s public message (a room's, or the lobby's when
        ``room`` is None): told to ``on_published`` here, on the sender's node only, so
        that each message is offered to the outgoing webhooks once in the cluster."""
        if self.on_published is None:
            return
        lobby = room is None
        message = ChatMessage(member.name, member.shown_addr, None, text, int(ms) / 1000, msgid,
                              member.account, self.hub.lobby if lobby else room, lobby=lobby,
                              notice=notice)  # fmt: skip
        self.on_published(message)

    def room_stream(self, key: str) -> str:
        return f"{self.link.name}:room:{key}:log"

    def _ask(
        self, member: Member, rid: RequestId, what: str, script: str, *args: Any
    ) -> Callable[[Callable[[Any], None]], None]:
        """Run ``script`` for ``member`` (node, mid, then ``args``); the decorated
        function gets its reply once it is a reply and ``member`` is still online."""

        def run(handle: Callable[[Any], None]) -> None:
            if self._refuse_unavailable(member, rid):
                return

            def done(reply: Any) -> None:
                if self._failed(member, rid, reply, what) or not member.online:
                    return
                handle(reply)

            self.link.script(script, self.link.node, member.id, *args, done=done)

        return run

    def _no_room(self, member: Member, rid: RequestId, name: str) -> None:
        self.hub.send(member, Error(rid, NO_SUCH_ROOM, f"there is no room {name}", name))

    def _answer_refusal(self, member: Member, rid: RequestId, reply: Any, name: str) -> bool:
        """Tell ``member`` what the usual refusals of a room script mean; True if it was
        one."""
        status = reply[0]
        if status == "none":
            self._no_room(member, rid, name)
        elif status == "refused":
            self.hub.send(member, refused(rid, reply[1], reply[2]))
        elif status == "no_user":
            message = f"no user named {name!r} is online"
            self.hub.send(member, Error(rid, NO_SUCH_USER, message, name))
        elif status == "not_member":
            message = f"{reply[1]} is not in {reply[2]}"
            self.hub.send(member, Error(rid, NOT_IN_ROOM, message, reply[2]))
        else:
            return False
        return True

    # ------------------------------------------------------------- membership

    def lobby(self, member: Member, rid: RequestId, *, inside: bool) -> bool:
        """``member`` leaves the lobby, or comes back: at once here (its plain lines),
        and for every node's lobby through the lj/lp event; refused while Redis cannot
        be reached, so that the node and Redis never disagree."""
        if self._refuse_unavailable(member, rid):
            return False
        member.in_lobby = inside
        flag = "1" if inside else ""
        self.link.script("room_lobby", self.link.node, member.id, flag, done=_ignore)
        return True

    def room_join(self, member: Member, command: JoinRoom, key: str) -> None:
        self._join(member, command.room, key, command.id, command.key or "", remembered=False)

    def _join(
        self, member: Member, name: str, key: str, rid: RequestId, given: str, *, remembered: bool
    ) -> None:
        hub = self.hub
        if self._refuse_unavailable(member, rid):
            return
        entry = self.entering.get((member.id, key))
        if entry is None:
            entry = self.entering[member.id, key] = Entering(rid)
        else:
            entry.pending += 1

        def done(reply: Any) -> None:
            if not (isinstance(reply, list) and reply[0] == "ok"):
                entry.pending -= 1  # refused, or a member already: nothing to wait for
                if entry.pending <= 0 and not entry.replied:
                    if self.entering.get((member.id, key)) is entry:
                        del self.entering[member.id, key]
                    self._stop_reading(key)
            if self._failed(member, rid, reply, "you may not have joined") or not member.online:
                return
            status = reply[0]
            if status == "refused":
                self._join_refused(member, rid, reply[1], reply[2])
            elif status == "member":
                settings = json.loads(reply[1])
                hub.send(member, joined(rid, settings, int(reply[2]), bool(int(reply[3]))))
            elif status == "ok":
                settings = json.loads(reply[2])
                answer = joined(rid, settings, int(reply[3]), bool(int(reply[4])))
                self._joined(member, key, settings["name"], str(reply[1]), entry, answer)
                if remembered and member.mode is Mode.IRC:  # its names, as after a JOIN
                    self.room_who(member, Who(id=None, room=settings["name"]), key)

        store = hub.store
        cutoff_ms = int(store.retain_days * 86400 * 1000) if store.retain_days > 0 else 0
        self.link.script(
            "room_join",
            self.link.node,
            member.id,
            key,
            name,
            given,
            address_fields(member.addr),
            "1" if remembered else "",
            hub.max_rooms,
            hub.max_rooms_per_user,
            hub.room_creation,
            cutoff_ms,
            done=done,
        )

    def _joined(
        self, member: Member, key: str, name: str, event_id: str, entry: Entering, answer: Joined
    ) -> None:
        """Redis took ``member`` into the room ``key``; see :class:`Entering`."""
        hub = self.hub
        stream = self.room_stream(key)
        room = hub.rooms.get(key)
        if room is None or not self.link.reader.reads(stream):
            self.entering.pop((member.id, key), None)
            room = hub.rooms[key] = Room(name, key)
            self.link.reader.add_stream(stream, event_id)
            hub.send(member, answer)
            self._enter(member, room)
        elif entry.seen:  # its join event came first, and what followed it
            self.entering.pop((member.id, key), None)
            hub.send(member, answer)
            self._enter(member, room)
            for event in entry.early:
                hub.send(member, event)
        elif self.entering.get((member.id, key)) is entry:
            entry.replied = True  # in the room here when its join event comes
            hub.send(member, answer)

    def _join_refused(self, member: Member, rid: RequestId, code: str, name: str) -> None:
        hub = self.hub
        if code == "too_many_user":
            message = f"you are in {hub.max_rooms_per_user} rooms already: leave one first"
            hub.send(member, Error(rid, TOO_MANY_ROOMS, message, name))
        elif code == "too_many_server":
            message = f"this server has {hub.max_rooms} rooms already"
            hub.send(member, Error(rid, TOO_MANY_ROOMS, message, name))
        elif code == "no_such_room":
            message = f"there is no room {name}, and only the administrator makes rooms here"
            hub.send(member, Error(rid, NO_SUCH_ROOM, message, name))
        elif code == "login_required":
            message = f"there is no room {name}; log in to make one"
            hub.send(member, Error(rid, LOGIN_REQUIRED, message, name))
        else:
            hub.send(member, refused(rid, code, name))

    def _enter(self, member: Member, room: Room) -> None:
        room.members[member.id] = member
        member.rooms[room.key] = room

    def _leave_here(self, member: Member, key: str) -> None:
        """``member`` is no longer in the room ``key`` here (Redis took it out)."""
        room = member.rooms.pop(key, None)
        if room is not None:
            room.members.pop(member.id, None)
        self._stop_reading(key)

    def _stop_reading(self, key: str) -> None:
        """When no user here is in the room ``key`` or joining it, stop reading it."""
        room = self.hub.rooms.get(key)
        if room is None or room.members:
            return
        if any(k == key for _, k in self.entering):
            return
        del self.hub.rooms[key]
        self.link.reader.drop_stream(self.room_stream(key))

    def leave_rooms_here(self, member: Member) -> None:
        """``member`` went offline: out of its rooms here (Redis' release() took it out
        of them there, with its offline event)."""
        for key in [k for m, k in self.entering if m == member.id]:
            del self.entering[member.id, key]
            self._stop_reading(key)
        for key in list(member.rooms):
            self._leave_here(member, key)

    def rejoin_rooms(self, member: Member, account_key: str) -> None:
        """A user logged in to an account (its ``li`` event): back in the account's
        rooms, each told with a ``Joined`` without id."""

        def found(reply: Any) -> None:
            if isinstance(reply, BaseException) or not member.online:
                return
            for key, name in zip(reply[::2], reply[1::2], strict=True):
                self._join(member, name, key, None, "", remembered=True)

        self.link.call(("HGETALL", f"{self.link.name}:aroom:{account_key}"), found)

    def room_part(self, member: Member, command: PartRoom, key: str) -> None:
        rid = command.id

        @self._ask(member, rid, "you may not have left", "room_part", key, command.reason or "")
        def parted(reply: Any) -> None:
            if reply[0] == "not_in":
                self.hub.send(member, refused(rid, NOT_IN_ROOM, command.room))
                return
            self._leave_here(member, key)
            self.hub.send(member, RoomOk(rid, reply[1], f"you have left {reply[1]}"))

    # ---------------------------------------------------------------- talking

    def room_message(self, member: Member, command: RoomMessage, key: str) -> None:
        hub, rid = self.hub, command.id
        store = hub.store
        cutoff = store.cutoff() // 1000 if store.retain_days > 0 else 0
        what = "the message may not have been sent"

        notice = "1" if command.notice else ""

        @self._ask(member, rid, what, "room_publish", key, command.text, cutoff, notice)
        def sent(reply: Any) -> None:
            if self._answer_refusal(member, rid, reply, command.room):
                return
            hub.stats.public_received += 1
            hub.stats.room_messages += 1
            if member.wire.mode is Mode.JSON:
                hub.send(member, Ok(rid, reply[1]))
            self.published(member, command.text, command.notice, reply[1], reply[2], reply[3])

    # -------------------------------------------------------------- asking

    def room_list(self, member: Member, command: ListRooms) -> None:
        hub, rid = self.hub, command.id

        @self._ask(member, rid, "try again", "room_list")
        def listed(reply: Any) -> None:
            answer = json.loads(reply)
            rooms = sorted(as_list(answer.get("rooms")), key=lambda r: room_key(r[0]))
            infos = [RoomInfo(hub.lobby, int(answer["lobby"]), None)]
            infos += [RoomInfo(name, int(count), topic or None) for name, count, topic in rooms]
            hub.reply(member, RoomList(rid, tuple(infos)))

    def _info(
        self, member: Member, rid: RequestId, name: str, key: str, *, who: bool = False
    ) -> Callable[[Callable[[dict[str, Any], dict[str, Any] | None, list[Any]], None]], None]:
        """Ask for the room ``key``'s settings (room_info.lua): the decorated function
        gets them, ``member``'s membership (None: not in it) and, with ``who``, the
        members' records and memberships (flat)."""

        def run(handle: Callable[[dict[str, Any], dict[str, Any] | None, list[Any]], None]) -> None:
            @self._ask(member, rid, "try again", "room_info", key, "1" if who else "")
            def got(reply: Any) -> None:
                if reply[0] == "none":
                    self._no_room(member, rid, name)
                    return
                mine = json.loads(reply[2]) if reply[2] else None
                handle(json.loads(reply[1]), mine, list(reply[4:]))

        return run

    def room_who(self, member: Member, command: Who, key: str) -> None:
        name = command.room or ""

        @self._info(member, command.id, name, key, who=True)
        def listed(settings: dict[str, Any], mine: Any, found: list[Any]) -> None:
            people = []
            for record, place in zip(found[::2], found[1::2], strict=True):
                user, standing = json.loads(record), json.loads(place)
                people.append((int(standing.get("n", 0)), user, standing))
            people.sort(key=lambda p: p[0])
            users = tuple(
                UserInfo(
                    user["name"],
                    user["addr"],
                    user.get("account"),
                    bool(standing.get("o")),
                    bool(standing.get("v")),
                )
                for _, user, standing in people
            )
            self.hub.reply(member, UserList(command.id, users, settings["name"]))

    # ------------------------------------------------------------ operators

    def room_topic(self, member: Member, command: Topic, key: str) -> None:
        rid = command.id
        if command.topic is None:

            @self._info(member, rid, command.room, key)
            def asked(settings: dict[str, Any], mine: Any, found: list[Any]) -> None:
                topic = settings.get("topic")
                by, time = settings.get("topic_by"), settings.get("topic_time")
                self.hub.send(member, TopicInfo(rid, settings["name"], topic, by, time))

            return

        what = "the topic may not have been set"

        @self._ask(member, rid, what, "room_topic", key, command.topic)
        def set_(reply: Any) -> None:
            if not self._answer_refusal(member, rid, reply, command.room):
                self.hub.send(member, RoomOk(rid, reply[1]))

    def room_kick(self, member: Member, command: RoomKick, key: str) -> None:
        rid, target = command.id, command.name
        reason = command.reason or ""

        @self._ask(member, rid, "try again", "room_kick", key, name_key(target), reason)
        def kicked(reply: Any) -> None:
            if reply[0] == "no_user":
                self._answer_refusal(member, rid, reply, target)
            elif not self._answer_refusal(member, rid, reply, command.room):
                self.hub.send(member, RoomOk(rid, reply[1]))

    def room_invite(self, member: Member, command: Invite, key: str) -> None:
        rid, target = command.id, command.name

        @self._ask(member, rid, "try again", "room_invite", key, name_key(target))
        def invited(reply: Any) -> None:
            if reply[0] == "no_user":
                self._answer_refusal(member, rid, reply, target)
            elif not self._answer_refusal(member, rid, reply, command.room):
                self.hub.send(member, RoomOk(rid, reply[1], f"you invited {reply[2]}"))

    def room_mode(self, member: Member, command: RoomMode, key: str) -> None:
        rid = command.id
        if not command.changes:

            @self._info(member, rid, command.room, key)
            def asked(settings: dict[str, Any], mine: Any, found: list[Any]) -> None:
                modes, args = settings_modes(settings, show_key=mine is not None)
                masks = None
                if command.listing:
                    kept = as_list(settings.get(LIST_NAMES[command.listing]))
                    masks = tuple(str(b["mask"]) for b in kept)
                listing = command.listing or "b"
                info = ModesInfo(rid, settings["name"], modes, tuple(args), masks, listing=listing)
                self.hub.reply(member, info)

            return
        changes = []
        for change in command.changes:
            item: dict[str, Any] = {"f": change.flag, "on": change.on}
            if change.arg is not None:
                item["a"] = change.arg
            if change.flag in "ov":
                item["tk"] = name_key(change.arg or "")
            elif change.flag in LISTS:
                mask = parse_mask(change.arg or "")
                assert isinstance(mask, Mask), "the parser checks masks"
                item["mask"] = mask_fields(mask, member.name)
            changes.append(item)
        names = [c.arg or "" for c in command.changes if c.flag in "ov"]

        @self._ask(member, rid, "try again", "room_mode", key, json.dumps(changes))
        def changed(reply: Any) -> None:
            if reply[0] == "too_many_bans":
                message = too_many_masks(reply[2] if len(reply) > 2 else "b")
                self.hub.send(member, Error(rid, BAD_REQUEST, message, reply[1]))
            elif reply[0] == "no_user":
                self._answer_refusal(member, rid, reply, reply[1] if len(reply) > 1 else names[0])
            elif not self._answer_refusal(member, rid, reply, command.room):
                self.hub.send(member, RoomOk(rid, reply[1]))

    # ------------------------------------------------- events from the rooms' streams

    def room_event(self, event: dict[str, Any]) -> None:
        """An event of a room's stream, for this node's users in the room."""
        hub = self.hub
        key = event["room"]
        room = hub.rooms.get(key)
        if room is None:
            return  # no one here reads it any more
        kind = event["t"]
        here = event.get("node") == self.link.node
        subject = self.local.get(int(event.get("mid") or 0)) if here else None
        told: Event
        if kind == "m":
            told = event_message(event, room=room.name)
            hub.stats.messages_delivered += self._tell_room(room, told)
            if subject is not None and hub.unflushed_since is None:
                hub.unflushed_since = subject.last_active
        elif kind == "join":
            entry = self.entering.get((subject.id, key)) if subject is not None else None
            told = RoomJoin(room.name, event["name"], event["addr"])
            self._tell_room(room, told, but=subject)
            if subject is not None and entry is not None:
                if entry.replied:  # told Joined already: in the room from here on
                    del self.entering[subject.id, key]
                    self._enter(subject, room)
                else:
                    entry.seen = True
        elif kind == "part":
            if subject is not None:
                self._leave_here(subject, key)
            told = RoomPart(room.name, event["name"], event["addr"], event.get("reason"))
            self._tell_room(room, told, but=subject)
        elif kind == "kick":
            told = RoomKicked(room.name, event["name"], event["by"], event.get("reason"))
            if not event.get("alone"):
                self._tell_room(room, told)
            elif subject is not None:  # the room was removed: each told of itself
                hub.send(subject, told)
            if subject is not None:
                self._leave_here(subject, key)
        elif kind == "topic":
            told = TopicInfo(
                None, room.name, event.get("topic"), event["by"], event.get("time"), True
            )
            self._tell_room(room, told)
        elif kind == "mode":
            args = tuple(str(a) for a in as_list(event.get("args")))
            self._tell_room(room, ModesChanged(room.name, event["by"], event["changes"], args))
        elif kind == "amend":
            apply_amend(hub, event, room.name)

    def _tell_room(self, room: Room, event: Event, but: Member | None = None) -> int:
        """``event`` to the members here of ``room`` (not ``but``), and kept for those
        whose join event came before their reply (:class:`Entering`)."""
        if self.entering:
            for (_, key), entry in self.entering.items():
                if key == room.key and entry.seen:
                    entry.early.append(event)
        members = [m for m in room.members.values() if m is not but]
        return fan_out(self.hub, members, event)

    def invited(self, member: Member, event: dict[str, Any]) -> None:
        """Its node's stream: ``member`` was invited to a room."""
        self.hub.send(member, Invited(event["rname"], event["by"]))

    def rooms_of(self, event: dict[str, Any]) -> list[Room]:
        """The rooms here of a presence or rename event's user (its ``rooms``)."""
        rooms = self.hub.rooms
        return [rooms[k] for k in as_list(event.get("rooms")) if k in rooms]

    def lobby_event(self, event: dict[str, Any]) -> None:
        """lj, lp (P:log): a user came back to the lobby or left it."""
        hub = self.hub
        here = event.get("node") == self.link.node
        mid = int(event.get("mid") or 0)
        others = [m for m in hub._members.values() if m.in_lobby and not (here and m.id == mid)]
        told: Event
        if event["t"] == "lj":
            told = RoomJoin(hub.lobby, event["name"], event["addr"])
        else:
            told = RoomPart(hub.lobby, event["name"], event["addr"])
        fan_out(hub, others, told)
