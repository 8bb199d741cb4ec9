"""A room as a server sees it: its name, its key and the members connected here, in the
order they joined; and how an event reaches them. The room's settings and who decides
about them are the backend's (one server: :mod:`imkit.hub.local_rooms`; a cluster node:
Redis, ``imkit.cluster.rooms``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imkit.protocol import Event, Frame, Mode

if TYPE_CHECKING:
    from imkit.hub.core import Hub
    from imkit.hub.members import Member


@dataclass(eq=False, slots=True)
class Room:
    name: str  # as first spelled
    key: str  # imkit.rules.rooms.room_key
    members: dict[int, Member] = field(default_factory=dict)  # here, in order of joining


def fan_out(hub: Hub, recipients: Iterable[Member], event: Event) -> int:
    """Queue ``event`` for each of ``recipients``; how many received it. Never blocks: a
    recipient whose queue is full is a slow consumer, removed once the loop is done
    (:meth:`Hub._overflow`). The joins not yet announced go first, as before every other
    output.

    This loop runs once per recipient of every message, so it is kept lean: each wire
    form is encoded at most once (an IRC form once per distinct form,
    :meth:`imkit.irc.wire.IrcConnection.frame_bytes`), and nothing is looked up twice."""
    if hub._unannounced:
        hub.announce_joins()
    frame = Frame(event)
    text: bytes | None = None
    json: bytes | None = None
    json_mode, irc_mode = Mode.JSON, Mode.IRC  # locals: enum lookups are slow
    delivered = 0
    slow: list[Member] = []
    for member in recipients:
        wire = member.wire
        if wire.mode is json_mode:
            data = json if json is not None else (json := frame.json)
        elif wire.mode is irc_mode:
            data = frame.for_wire(wire)
        else:  # text, or not yet decided (it reads text)
            data = text if text is not None else (text := frame.text)
        if not data:
            continue
        if member.outbox.put(data):
            delivered += 1
        else:
            slow.append(member)
    if slow:
        hub._overflow(slow)
    return delivered


def lobby_members(hub: Hub) -> list[Member]:
    """The lobby's members here, in order of arrival (a user that left it with
    ``part|#lobby``, and an IRC user until it joins it, are not)."""
    return [m for m in hub._members.values() if m.in_lobby]


def lobby_and_rooms(hub: Hub, rooms: Iterable[Room], *, lobby: bool = True) -> list[Member]:
    """Who is told of a user's presence or rename: the lobby (unless ``lobby`` is
    False: the user is not in it), and the members here of ``rooms`` (the user's), each
    once, the lobby's first."""
    recipients = lobby_members(hub) if lobby else []
    seen = {m.id for m in recipients}
    for room in rooms:
        for member in room.members.values():
            if member.id not in seen:
                seen.add(member.id)
                recipients.append(member)
    return recipients


def tell_irc(hub: Hub, event: Event, rooms: Iterable[Room], *, lobby: bool = True) -> None:
    """Queue ``event`` (an IRC-only one: an account's change, account-notify) for the
    IRC users here among :func:`lobby_and_rooms`, each once; their wires decide who
    negotiated it (:meth:`imkit.irc.wire.IrcConnection.frame_bytes`)."""
    if hub._unannounced:
        hub.announce_joins()  # before lobby_and_rooms: it may remove slow consumers
    irc = Mode.IRC
    recipients = lobby_and_rooms(hub, rooms, lobby=lobby)
    fan_out(hub, [m for m in recipients if m.mode is irc], event)
