"""The hub's command table's entries for rooms (docs/rooms.md): the lobby's requests are
answered here, the same on every server; every other room's go to the backend, which
decides (one server: :mod:`imkit.hub.local_rooms`; a cluster node: Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imkit.protocol import (
    NOT_IN_ROOM,
    NOT_ROOM_OPERATOR,
    Command,
    Error,
    Invite,
    Joined,
    JoinRoom,
    ListRooms,
    ModesInfo,
    PartRoom,
    PublicMessage,
    RequestId,
    RoomKick,
    RoomMessage,
    RoomMode,
    RoomOk,
    Topic,
    TopicInfo,
    Who,
)
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.hub.core import Hub
    from imkit.hub.members import Member

Handler = Callable[["Member", Any], None]


def not_in_lobby(hub: Hub, member: Member, rid: RequestId) -> None:
    lobby = hub.lobby
    message = f"you are not in {lobby}; join|{lobby} to talk there"
    hub.send(member, Error(rid, NOT_IN_ROOM, message, lobby))


def room_commands(hub: Hub) -> dict[type[Command], Handler]:
    """The entries of :meth:`Hub._command_table` for rooms, and for the two lobby
    requests that change with them (a plain message, ``who``)."""
    backend = hub.backend
    lobby_key = hub.lobby_key

    def public(member: Member, command: PublicMessage) -> None:
        if member.in_lobby:
            backend.public(member, command)
        else:
            not_in_lobby(hub, member, command.id)

    def who(member: Member, command: Who) -> None:
        key = None if command.room is None else room_key(command.room)
        if key is None or key == lobby_key:
            backend.who(member, command)
        else:
            backend.room_who(member, command, key)

    def join(member: Member, command: JoinRoom) -> None:
        key = room_key(command.room)
        if key != lobby_key:
            backend.room_join(member, command, key)
        elif member.in_lobby or backend.lobby(member, command.id, inside=True):
            hub.send(member, _lobby_joined(hub, command.id))

    def part(member: Member, command: PartRoom) -> None:
        key = room_key(command.room)
        if key != lobby_key:
            backend.room_part(member, command, key)
        elif not member.in_lobby:
            not_in_lobby(hub, member, command.id)
        elif backend.lobby(member, command.id, inside=False):
            hub.send(member, RoomOk(command.id, hub.lobby, f"you have left {hub.lobby}"))

    def message(member: Member, command: RoomMessage) -> None:
        key = room_key(command.room)
        if key == lobby_key:
            public(member, PublicMessage(id=command.id, text=command.text, notice=command.notice))
        else:
            backend.room_message(member, command, key)

    def topic(member: Member, command: Topic) -> None:
        key = room_key(command.room)
        if key != lobby_key:
            backend.room_topic(member, command, key)
        elif command.topic is None:
            hub.send(member, TopicInfo(command.id, hub.lobby, None))
        else:
            _lobby_has_no_operators(hub, member, command.id)

    def operator_request(name: str) -> Handler:
        def handle(member: Member, command: Any) -> None:
            key = room_key(command.room)
            if key == lobby_key and isinstance(command, RoomMode) and not command.changes:
                masks = () if command.listing else None  # asked, as IRC clients do
                info = ModesInfo(command.id, hub.lobby, "+", (), masks, listing=command.listing)
                hub.send(member, info)
            elif key == lobby_key:
                _lobby_has_no_operators(hub, member, command.id)
            else:
                getattr(backend, name)(member, command, key)

        return handle

    return {
        PublicMessage: public,
        Who: who,
        RoomMessage: message,
        JoinRoom: join,
        PartRoom: part,
        ListRooms: backend.room_list,
        Topic: topic,
        RoomKick: operator_request("room_kick"),
        Invite: operator_request("room_invite"),
        RoomMode: operator_request("room_mode"),
    }


def _lobby_joined(hub: Hub, rid: RequestId) -> Joined:
    count = sum(1 for m in hub._members.values() if m.in_lobby)
    return Joined(rid, hub.lobby, None, "+", count)


def _lobby_has_no_operators(hub: Hub, member: Member, rid: RequestId) -> None:
    message = f"{hub.lobby} has no operators and no settings"
    hub.send(member, Error(rid, NOT_ROOM_OPERATOR, message, hub.lobby))
