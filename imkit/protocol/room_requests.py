"""Room requests (docs/rooms.md): text-mode lines and JSON objects into commands. Called
by :mod:`imkit.protocol.parsing` for the lines and types that are rooms'."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imkit.protocol.codes import BAD_REQUEST, BAD_ROOM_NAME, HISTORY_MAX, INVALID_MESSAGE, RequestId
from imkit.protocol.commands import (
    Command,
    History,
    Invalid,
    Invite,
    JoinRoom,
    ListRooms,
    ModeChange,
    PartRoom,
    RoomKick,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
)
from imkit.rules.rooms import LISTS, TOPIC_MAX, change_problem, room_problem

# The text commands that are rooms' (the first field of a line with a '|').
TEXT_HEADS = frozenset({"join", "part", "topic", "kick", "invite", "mode", "ban", "unban"})
JSON_TYPES = frozenset({"join", "part", "rooms", "topic", "kick", "invite", "mode"})


def _invalid(code: str, message: str, request_id: RequestId = None) -> Invalid:
    return Invalid(id=request_id, code=code, message=message)


class RoomRequestError(Exception):
    """A malformed room request: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def checked_room(name: str) -> str:
    problem = room_problem(name)
    if problem is not None:
        raise RoomRequestError(BAD_ROOM_NAME, f"{name!r} is not a room's name: {problem}")
    return name


def parse_changes(text: str, args: list[str]) -> tuple[tuple[ModeChange, ...], str]:
    """``+kl-m`` and its arguments into changes; and which list of masks it asks for
    (``+b``, ``+e`` or ``+I`` alone: that letter; else "")."""
    if not args and len(text.lstrip("+")) == 1 and len(text) <= 2 and text[-1] in LISTS:
        return (), text[-1]
    changes: list[ModeChange] = []
    sign: bool | None = None
    pending = list(args)
    for char in text:
        if char in "+-":
            sign = char == "+"
            continue
        if sign is None:
            raise RoomRequestError(BAD_REQUEST, f"a mode change begins with + or -: {text!r}")
        takes = char in "ov" + LISTS or (sign and char in "kl")
        arg = pending.pop(0) if takes and pending else None
        problem = change_problem(char, sign, arg)
        if problem is not None:
            raise RoomRequestError(BAD_REQUEST, problem)
        changes.append(ModeChange(char, sign, arg))
    if not changes:
        raise RoomRequestError(BAD_REQUEST, f"no mode change in {text!r}")
    if pending:
        raise RoomRequestError(BAD_REQUEST, f"more arguments than {text!r} takes")
    return tuple(changes), ""


def _topic(text: str) -> str:
    if len(text) > TOPIC_MAX:
        raise RoomRequestError(BAD_REQUEST, f"a topic has at most {TOPIC_MAX} characters")
    return text


# ------------------------------------------------------------------------ text mode


def parse_text_room(head: str, rest: str) -> Command:
    """A text line ``HEAD|REST`` whose HEAD is one of :data:`TEXT_HEADS`, or ``to``,
    ``who`` or ``history`` followed by a room."""
    try:
        return _TEXT[head](rest)
    except RoomRequestError as error:
        return _invalid(error.code, str(error))


def _fields(rest: str, usage: str, least: int) -> list[str]:
    fields = rest.split("|")
    if len(fields) < least or not fields[0]:
        raise RoomRequestError(BAD_REQUEST, f"use {usage}")
    return fields


def _text_join(rest: str) -> Command:
    room, _, key = rest.partition("|")
    return JoinRoom(room=checked_room(room), key=key or None)


def _text_part(rest: str) -> Command:
    room, _, reason = rest.partition("|")
    return PartRoom(room=checked_room(room), reason=reason or None)


def _text_to(rest: str) -> Command:
    room, bar, text = rest.partition("|")
    if not bar or not text:
        raise RoomRequestError(INVALID_MESSAGE, "use to|#ROOM|TEXT with a non-empty TEXT")
    return RoomMessage(room=checked_room(room), text=text)


def _text_who(rest: str) -> Command:
    return Who(room=checked_room(rest))


def _text_history(rest: str) -> Command:
    room, _, count = rest.partition("|")
    if not (count.isascii() and count.isdigit() and 1 <= int(count) <= HISTORY_MAX):
        raise RoomRequestError(BAD_REQUEST, f"use history|#ROOM|N with N from 1 to {HISTORY_MAX}")
    return History(limit=int(count), room=checked_room(room))


def _text_topic(rest: str) -> Command:
    room, bar, topic = rest.partition("|")
    return Topic(room=checked_room(room), topic=_topic(topic) if bar else None)


def _text_kick(rest: str) -> Command:
    fields = _fields(rest, "kick|#ROOM|NAME or kick|#ROOM|NAME|REASON", 2)
    if not fields[1]:
        raise RoomRequestError(BAD_REQUEST, "use kick|#ROOM|NAME or kick|#ROOM|NAME|REASON")
    reason = "|".join(fields[2:]) or None
    return RoomKick(room=checked_room(fields[0]), name=fields[1], reason=reason)


def _text_invite(rest: str) -> Command:
    fields = _fields(rest, "invite|#ROOM|NAME", 2)
    if len(fields) != 2 or not fields[1]:
        raise RoomRequestError(BAD_REQUEST, "use invite|#ROOM|NAME")
    return Invite(room=checked_room(fields[0]), name=fields[1])


def _text_mode(rest: str) -> Command:
    fields = rest.split("|")
    room = checked_room(fields[0])
    if len(fields) == 1:
        return RoomMode(room=room)
    changes, listing = parse_changes(fields[1], fields[2:])
    return RoomMode(room=room, changes=changes, listing=listing)


def _text_ban(on: bool) -> Callable[[str], Command]:
    def parse(rest: str) -> Command:
        usage = f"{'ban' if on else 'unban'}|#ROOM|MASK"
        fields = _fields(rest, usage, 2)
        if len(fields) != 2 or not fields[1]:
            raise RoomRequestError(BAD_REQUEST, f"use {usage}")
        changes, _ = parse_changes("+b" if on else "-b", [fields[1]])
        return RoomMode(room=checked_room(fields[0]), changes=changes)

    return parse


_TEXT: dict[str, Callable[[str], Command]] = {
    "join": _text_join,
    "part": _text_part,
    "to": _text_to,
    "who": _text_who,
    "history": _text_history,
    "topic": _text_topic,
    "kick": _text_kick,
    "invite": _text_invite,
    "mode": _text_mode,
    "ban": _text_ban(True),
    "unban": _text_ban(False),
}


# --------------------------------------------------------------------------- JSON


def parse_json_room(
    kind: str, obj: dict[str, Any], rid: RequestId, string: Callable[..., str | None]
) -> Command:
    """A JSON request whose type is one of :data:`JSON_TYPES`; ``string`` reads a
    string field (raising the parser's shape error)."""
    try:
        if kind == "rooms":
            return ListRooms(id=rid)
        room = checked_room(_required(string(obj, "room", required=True)))
        if kind == "join":
            return JoinRoom(id=rid, room=room, key=string(obj, "key", required=False) or None)
        if kind == "part":
            return PartRoom(id=rid, room=room, reason=string(obj, "reason", required=False))
        if kind == "topic":
            topic = string(obj, "topic", required=False)
            return Topic(id=rid, room=room, topic=None if topic is None else _topic(topic))
        if kind == "kick":
            name = _required(string(obj, "name", required=True))
            reason = string(obj, "reason", required=False)
            return RoomKick(id=rid, room=room, name=name, reason=reason)
        if kind == "invite":
            return Invite(id=rid, room=room, name=_required(string(obj, "name", required=True)))
        changes = string(obj, "changes", required=False)
        if changes is None:
            return RoomMode(id=rid, room=room)
        args = obj.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise RoomRequestError(BAD_REQUEST, "field 'args' must be a list of strings")
        parsed, listing = parse_changes(changes, list(args))
        return RoomMode(id=rid, room=room, changes=parsed, listing=listing)
    except RoomRequestError as error:
        return _invalid(error.code, str(error), rid)


def room_field(obj: dict[str, Any], string: Callable[..., str | None]) -> str | None:
    """A message's, who's or history's optional ``room`` (checked), or None."""
    room = string(obj, "room", required=False)
    return None if room is None else checked_room(room)


def _required(value: str | None) -> str:
    assert value is not None  # required=True raised otherwise
    return value
