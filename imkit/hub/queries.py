"""The hub's answers to the requests about people (:mod:`imkit.protocol.queries`,
what the IRC port needs beyond rooms and messages): who someone is, the counts, away,
quit, and the replies a client's own wire made. Answered from this server's members
(WHOIS and WHO: the backend's, :func:`local_people` on one server; a cluster node asks
Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imkit.hub.members import Member
from imkit.hub.rooms import fan_out, lobby_and_rooms
from imkit.protocol import NO_SUCH_USER, Bye, Command, Error, Mode, RenameOk
from imkit.protocol.queries import (
    Answer,
    AwayOk,
    Counts,
    Described,
    Kill,
    Lusers,
    People,
    Person,
    Quit,
    Register,
    SetAway,
    SetName,
    UserModes,
    UserModesSet,
    Wallops,
    WallopsMessage,
    Whois,
)
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.hub.core import Hub

# The error an IRC operator's command gets from anyone else.
NOT_OPERATOR = "not_operator"


def _standing(hub: Hub, key: str, member: Member) -> str:
    """``@`` for a room's operator, ``+`` for a voice, else "" (one server's rooms)."""
    states = getattr(hub.backend, "states", None)
    state = None if states is None else states.get(key)
    place = None if state is None else state.members.get(member.id)
    if place is None:
        return ""
    return ("@" if place.operator else "") + ("+" if place.voice else "")


def _secret(hub: Hub, key: str) -> bool:
    states = getattr(hub.backend, "states", None)
    state = None if states is None else states.get(key)
    return state is not None and "s" in state.flags


def person(hub: Hub, member: Member, asker: Member | None) -> Person:
    rooms = []
    if member.in_lobby:
        rooms.append(hub.lobby)
    for key, room in member.rooms.items():
        if _secret(hub, key) and (asker is None or key not in asker.rooms):
            continue
        rooms.append(_standing(hub, key, member) + room.name)
    return Person(
        member.name,
        member.shown_addr,
        member.account,
        member.ident,
        member.realname,
        member.away,
        max(0.0, time.monotonic() - member.last_active),
        member.connected_wall,
        tuple(rooms),
        member.modes,
    )


def local_people(hub: Hub, member: Member, command: Whois) -> None:
    """:class:`Whois` answered from this server's members: one server's whole chat (a
    cluster node asks Redis: imkit.cluster.people, and falls back on this while it
    cannot)."""
    if command.room is not None:
        key = room_key(command.room) if command.room != "*" else "*"
        if key == "*":  # everyone here (an IRC WHO with a mask)
            members = list(hub._members.values())
            name = "*"
        elif key == hub.lobby_key:
            members = [m for m in hub._members.values() if m.in_lobby]
            name = hub.lobby
        else:
            room = hub.rooms.get(key)
            visible = room is not None and not (_secret(hub, key) and key not in member.rooms)
            members = list(room.members.values()) if room is not None and visible else []
            name = room.name if room is not None else command.room
        found = tuple(person(hub, m, member) for m in members)
        hub.reply(member, People(command.id, (command.room,), found, name))
        return
    people = []
    for name in command.names:
        other = hub.find(name)
        if other is not None and other.online:
            people.append(person(hub, other, member))
    hub.reply(member, People(command.id, command.names, tuple(people)))


def query_commands(hub: Hub) -> dict[type[Command], Callable[[Member, Any], None]]:
    """The entries of :meth:`Hub._command_table` for the requests about people."""

    peaks = [0, 0]  # the most users here and in all, seen by LUSERS

    def lusers(member: Member, command: Lusers) -> None:
        here = len(hub.local_members())
        users = len(hub)
        peaks[0], peaks[1] = max(peaks[0], here), max(peaks[1], users)
        rooms = len(getattr(hub.backend, "states", hub.rooms)) + 1  # the lobby too
        hub.backend.in_order(member, Counts(command.id, users, here, rooms, *peaks))

    def user_modes(member: Member, command: UserModes) -> None:
        modes = set(member.modes) | set(command.add)
        modes -= set(command.remove)
        member.modes = "".join(sorted(modes))
        hub.backend.describe(member)
        answer = UserModesSet(command.id, member.modes, command.add, command.remove)
        hub.backend.in_order(member, answer)

    def told(member: Member, event: Described) -> None:
        """``event`` to the IRC users who share the lobby or a room with ``member``."""
        others = lobby_and_rooms(hub, member.rooms.values(), lobby=member.in_lobby)
        fan_out(hub, [m for m in others if m is not member and m.mode is Mode.IRC], event)

    def away(member: Member, command: SetAway) -> None:
        member.away = command.message or None
        if not command.again:
            hub.backend.describe(member)
            hub.backend.in_order(member, AwayOk(command.id, member.away is not None))
        told(member, Described(member.name, member.shown_addr, member.away))

    def set_name(member: Member, command: SetName) -> None:
        member.realname = command.realname
        hub.backend.describe(member)
        event = Described(member.name, member.shown_addr, member.away, command.realname)
        hub.send(member, event)
        told(member, event)

    def quit_(member: Member, command: Quit) -> None:
        member.quit_reason = command.reason
        hub.remove(member, Bye("quit", command.reason or "Client Quit"))

    def operator(member: Member, command: Command) -> bool:
        if "o" in member.modes:
            return True
        hub.send(member, Error(command.id, NOT_OPERATOR, "only IRC operators may do that"))
        return False

    def kill(member: Member, command: Kill) -> None:
        if not operator(member, command):
            return
        if hub.find(command.name) is None:
            message = f"no user named {command.name!r} is online"
            hub.send(member, Error(command.id, NO_SUCH_USER, message, command.name))
            return
        hub.kick(command.name, f"killed by {member.name}: {command.reason}")

    def wallops(member: Member, command: Wallops) -> None:
        if not operator(member, command):
            return
        told = [m for m in hub.local_members() if "w" in m.modes]
        fan_out(hub, told, WallopsMessage(member.name, member.shown_addr, command.text))

    def answer(member: Member, command: Answer) -> None:
        hub.backend.in_order(member, command.event)  # after the replies asked before

    def register(member: Member, command: Register) -> None:
        """An IRC client's registration, once it is online (imkit.transport.irc): its
        nick; logged in already (SASL), its account's name."""
        member.ident, member.realname = command.ident, command.realname
        if member.account is not None:  # logged in (SASL) before it said who it is
            hub.backend.describe(member)
            # Its name is its account's: on a cluster node once the login is answered,
            # which the welcome waits for (in_order).
            hub.backend.in_order(member, RenameOk(command.id, member.account))
        else:
            hub.backend.rename(member, command.id, command.nick, hello=False)

    return {
        Whois: hub.backend.people,
        Lusers: lusers,
        SetAway: away,
        Quit: quit_,
        Answer: answer,
        Register: register,
        UserModes: user_modes,
        Kill: kill,
        SetName: set_name,
        Wallops: wallops,
    }
