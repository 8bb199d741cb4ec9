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
    """Queue ``event`` for each of ``recipients`` (encoded once per mode), as
    :meth:`Hub.broadcast` does for the lobby; how many received it. The joins not yet
    announced go first, as before every other output."""
    if hub._unannounced:
        hub.announce_joins()
    frame = Frame(event)
    json_mode = Mode.JSON
    delivered = 0
    slow: list[Member] = []
    for member in recipients:
        data = frame.json if member.wire.mode is json_mode else frame.text
        if not data:
            continue
        if member.outbox.put(data):
            delivered += 1
        else:
            slow.append(member)
    if slow:
        hub._overflow(slow)
    return delivered


def lobby_and_rooms(hub: Hub, rooms: Iterable[Room]) -> list[Member]:
    """Who is told of a user's presence or rename: the lobby, and the members here of
    ``rooms`` (the user's), each once, the lobby's first."""
    recipients = [m for m in hub._members.values() if m.in_lobby]
    seen = {m.id for m in recipients}
    for room in rooms:
        for member in room.members.values():
            if member.id not in seen:
                seen.add(member.id)
                recipients.append(member)
    return recipients
