"""What the server tells a client about rooms (docs/rooms.md), in either wire form.

Every text line here begins with the room's name, a space and a ``*``: a room's message
line has ``[`` there, so no message can pass for one of these. Text the users wrote (a
topic, a reason) goes through :func:`one_line`.
"""

from __future__ import annotations

from typing import Any

from imkit.protocol.codes import RequestId
from imkit.protocol.events import Event, one_line
from imkit.protocol.records import record
from imkit.rules.rooms import LIST_NAMES, LIST_WORDS
from imkit.rules.times import iso_time


@record
class RoomInfo:
    room: str
    members: int
    topic: str | None = None


@record
class Joined(Event):
    """The reply to a join; without an ``id``, a logged-in account put back in a room."""

    id: RequestId
    room: str
    topic: str | None
    modes: str
    members: int
    operator: bool = False

    def text_line(self) -> str:
        line = f"{self.room} * you have joined {self.room}"
        if self.topic:
            line += f"\n{self.room} * topic: {one_line(self.topic)}"
        return line

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "joined",
            "id": self.id,
            "room": self.room,
            "topic": self.topic,
            "modes": self.modes,
            "members": self.members,
            "operator": self.operator,
        }


@record
class RoomJoin(Event):
    """Someone joined: told to the room's other members."""

    room: str
    name: str
    addr: str
    account: str | None = None  # its account (IRC's extended-join shows it)

    def text_line(self) -> str:
        return f"{self.room} * {self.name} [{self.addr}] has joined"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "join", "room": self.room, "name": self.name, "addr": self.addr}


@record
class RoomPart(Event):
    """Someone left: told to the room's other members."""

    room: str
    name: str
    addr: str
    reason: str | None = None

    def text_line(self) -> str:
        line = f"{self.room} * {self.name} [{self.addr}] has left"
        return f"{line}: {one_line(self.reason)}" if self.reason else line

    def json_fields(self) -> dict[str, Any]:
        fields = {"type": "part", "room": self.room, "name": self.name, "addr": self.addr}
        if self.reason:
            fields["reason"] = one_line(self.reason)
        return fields


@record
class RoomOk(Event):
    """A room request was done (a part, an invite, a change): ``ok`` with the room, and
    in text mode ``note`` when there is one (None: nothing, as a JSON ok)."""

    id: RequestId
    room: str
    note: str | None = None

    def text_line(self) -> str | None:
        return None if self.note is None else f"{self.room} * {one_line(self.note)}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "room": self.room}


@record
class TopicInfo(Event):
    """A room's topic: a reply (``id``, ``changed`` False), or a change told to its
    members (``changed``)."""

    id: RequestId
    room: str
    topic: str | None
    by: str | None = None
    time: float | None = None
    changed: bool = False

    def text_line(self) -> str:
        if self.changed:
            if self.topic:
                return f"{self.room} * {self.by} set the topic: {one_line(self.topic)}"
            return f"{self.room} * {self.by} cleared the topic"
        if self.topic:
            return f"{self.room} * topic: {one_line(self.topic)}"
        return f"{self.room} * no topic"

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "topic",
            "id": self.id,
            "room": self.room,
            "topic": self.topic,
            "by": self.by,
            "time": None if self.time is None else iso_time(self.time),
        }


@record
class RoomKicked(Event):
    """An operator took ``name`` out of the room: told to every member, ``name`` too."""

    room: str
    name: str
    by: str
    reason: str | None = None

    def text_line(self) -> str:
        line = f"{self.room} * {self.name} was kicked by {self.by}"
        return f"{line}: {one_line(self.reason)}" if self.reason else line

    def json_fields(self) -> dict[str, Any]:
        fields = {"type": "kick", "room": self.room, "name": self.name, "by": self.by}
        if self.reason:
            fields["reason"] = one_line(self.reason)
        return fields


@record
class ModesChanged(Event):
    """An operator changed the room's settings: told to every member."""

    room: str
    by: str
    changes: str  # +o-v
    args: tuple[str, ...] = ()

    def text_line(self) -> str:
        shown = " ".join((self.changes, *self.args))
        return f"{self.room} * {self.by} set mode {one_line(shown)}"

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "mode",
            "room": self.room,
            "by": self.by,
            "changes": self.changes,
            "args": list(self.args),
        }


@record
class ModesInfo(Event):
    """The reply to ``mode|#ROOM`` (its settings) or ``mode|#ROOM|+b`` (its bans;
    ``+e``, ``+I``: its ban exceptions, invite exceptions, as ``listing`` says)."""

    id: RequestId
    room: str
    modes: str
    args: tuple[str, ...] = ()
    masks: tuple[str, ...] | None = None  # asked for a list of masks
    created: float | None = None  # when the room was made
    listing: str = "b"  # which list ``masks`` is (imkit.rules.rooms.LISTS)

    def text_line(self) -> str:
        if self.masks is None:
            return f"{self.room} * mode {one_line(' '.join((self.modes, *self.args)))}"
        word = LIST_WORDS[self.listing]
        if not self.masks:
            return f"{self.room} * no {word}s"
        word = word.replace(" ", "_")  # one word: "ban_exception MASK"
        return "\n".join(f"{self.room} * {word} {one_line(mask)}" for mask in self.masks)

    def json_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "type": "modes",
            "id": self.id,
            "room": self.room,
            "modes": self.modes,
            "args": list(self.args),
        }
        if self.masks is not None:
            fields[LIST_NAMES[self.listing]] = list(self.masks)
        return fields


@record
class Invited(Event):
    """An operator invited this user into a room."""

    room: str
    by: str
    by_addr: str = ""  # the inviter's address as shown (an IRC INVITE's source)

    def text_line(self) -> str:
        return f"{self.room} * {self.by} invites you to {self.room}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "invite", "room": self.room, "by": self.by}


@record
class RoomList(Event):
    """The reply to ``rooms``: the rooms its user may see."""

    id: RequestId
    rooms: tuple[RoomInfo, ...]

    def text_line(self) -> str:
        if not self.rooms:
            return "no rooms"
        lines = []
        for info in self.rooms:
            count = f"{info.members} member{'s' if info.members != 1 else ''}"
            topic = f", topic: {one_line(info.topic)}" if info.topic else ""
            lines.append(f"{info.room} * {count}{topic}")
        return "\n".join(lines)

    def json_fields(self) -> dict[str, Any]:
        rooms = [{"room": r.room, "members": r.members, "topic": r.topic} for r in self.rooms]
        return {"type": "rooms", "id": self.id, "rooms": rooms}
