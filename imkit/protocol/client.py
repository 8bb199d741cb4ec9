"""The client's side of JSON Lines: requests out, server lines in as events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from imkit.protocol.commands import (
    Command,
    Hello,
    History,
    Invite,
    JoinRoom,
    ListRooms,
    Login,
    ModeChange,
    PartRoom,
    Passwd,
    Ping,
    PrivateMessage,
    PublicMessage,
    Rename,
    RoomKick,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
)
from imkit.protocol.edits import MessageDeleted, MessageEdited
from imkit.protocol.events import (
    Bye,
    ChatMessage,
    Error,
    Event,
    HistoryPage,
    LoginOk,
    NameChange,
    Ok,
    Pong,
    Presence,
    RenameOk,
    ServerNotice,
    UserInfo,
    UserList,
    Welcome,
)
from imkit.protocol.framing import LineFramer
from imkit.protocol.parsing import load_json
from imkit.protocol.records import record
from imkit.protocol.room_events import (
    Invited,
    Joined,
    ModesChanged,
    ModesInfo,
    RoomInfo,
    RoomJoin,
    RoomKicked,
    RoomList,
    RoomOk,
    RoomPart,
    TopicInfo,
)
from imkit.rules.rooms import LIST_NAMES
from imkit.rules.times import parse_iso_time

# A client reads the server's lines, and one `users` reply lists everyone online (about
# 60 bytes a user): 16 MiB is ample for 100,000 users and still bounds a bad server.
CLIENT_MAX_LINE = 16 * 1024 * 1024


@record
class Notice(Event):
    """A text line a JSON client received (before its welcome, or a refusal)."""

    text: str

    def text_line(self) -> str:
        return self.text

    def json_fields(self) -> dict[str, Any]:  # pragma: no cover - never sent
        raise TypeError("a Notice has no JSON form")


def encode_request(command: Command) -> bytes:
    """The JSON line a client sends for ``command``."""
    fields: dict[str, Any]
    if isinstance(command, PublicMessage):
        fields = {"type": "message", "text": command.text}
    elif isinstance(command, PrivateMessage):
        fields = {"type": "message", "text": command.text, "to": command.to}
    elif isinstance(command, Who):
        fields = {"type": "who"}
        if command.room is not None:
            fields["room"] = command.room
    elif isinstance(command, Rename):
        fields = {"type": "rename", "name": command.name}
    elif isinstance(command, Ping):
        fields = {"type": "ping"}
    elif isinstance(command, History):
        fields = {"type": "history", "limit": command.limit}
        if command.before is not None:
            fields["before"] = command.before
        if command.with_ is not None:
            fields["with"] = command.with_
        if command.room is not None:
            fields["room"] = command.room
        if command.query is not None:
            fields["query"] = command.query
    elif isinstance(command, Login):
        fields = {"type": "login", "name": command.name, "password": command.password}
    elif isinstance(command, Passwd):
        fields = {"type": "passwd", "old": command.old, "new": command.new}
    elif isinstance(command, Hello):
        fields = {"type": "hello", "v": command.version}
        if command.name is not None:
            fields["name"] = command.name
        if command.password is not None:
            fields["password"] = command.password
        if command.login is not None:
            name, password = command.login
            fields["login"] = {"name": name, "password": password}
    else:
        fields = _room_request(command)
    if command.id is not None:
        fields["id"] = command.id
    return (json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _room_request(command: Command) -> dict[str, Any]:
    """The JSON fields of a room request (docs/rooms.md)."""
    fields: dict[str, Any]
    if isinstance(command, RoomMessage):
        fields = {"type": "message", "room": command.room, "text": command.text}
    elif isinstance(command, JoinRoom):
        fields = {"type": "join", "room": command.room}
        if command.key is not None:
            fields["key"] = command.key
    elif isinstance(command, PartRoom):
        fields = {"type": "part", "room": command.room}
        if command.reason is not None:
            fields["reason"] = command.reason
    elif isinstance(command, ListRooms):
        fields = {"type": "rooms"}
    elif isinstance(command, Topic):
        fields = {"type": "topic", "room": command.room}
        if command.topic is not None:
            fields["topic"] = command.topic
    elif isinstance(command, RoomKick):
        fields = {"type": "kick", "room": command.room, "name": command.name}
        if command.reason is not None:
            fields["reason"] = command.reason
    elif isinstance(command, Invite):
        fields = {"type": "invite", "room": command.room, "name": command.name}
    elif isinstance(command, RoomMode):
        fields = {"type": "mode", "room": command.room}
        if command.listing:
            fields["changes"] = "+" + command.listing
        elif command.changes:
            fields["changes"], fields["args"] = mode_changes(command.changes)
    else:
        raise TypeError(f"{type(command).__name__} is not sent by clients")
    return fields


def mode_changes(changes: tuple[ModeChange, ...]) -> tuple[str, list[str]]:
    """Changes as the wire writes them: ``("+o-v", ["sam", "kim"])``; a sign is
    written only where it changes, as IRC does."""
    text, args, sign = "", [], ""
    for change in changes:
        wanted = "+" if change.on else "-"
        if wanted != sign:
            text, sign = text + wanted, wanted
        text += change.flag
        if change.arg is not None:
            args.append(change.arg)
    return text, args


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _optional_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def decode_event(obj: dict[str, Any]) -> Event | None:
    """The event of one JSON object from the server; None for types this client does not
    know (the protocol may grow), so they can be skipped."""
    kind = obj.get("type")
    rid = obj.get("id")
    if kind == "message":
        return _message(obj)
    if kind in ("deleted", "edited"):
        return _amended(obj)
    if kind == "history":
        messages = tuple(_message(m) for m in _objects(obj, "messages"))
        before = obj.get("before")
        before = before if isinstance(before, str) else None
        return HistoryPage(rid, messages, obj.get("more") is True, before)
    if kind == "presence":
        return Presence(_str(obj, "name"), _str(obj, "addr"), obj.get("status") == "online")
    if kind == "rename":
        reason = obj.get("reason")
        reason = reason if isinstance(reason, str) else None
        return NameChange(_str(obj, "old"), _str(obj, "new"), _str(obj, "addr"), reason)
    if kind == "notice":
        return ServerNotice(_str(obj, "code"), _str(obj, "message"))
    if kind == "ok":
        if "room" in obj and "msgid" not in obj:  # a part's, an invite's, a change's
            return RoomOk(rid, _str(obj, "room"))
        if "account" in obj:  # a login's ok names the account
            return LoginOk(rid, _str(obj, "name") or _str(obj, "account"))
        if "name" in obj:
            return RenameOk(rid, _str(obj, "name"))
        # "queued": true says only that a private message was kept for an offline
        # account, not for whom: the client knows whom it wrote to. Ok.queued is then
        # "" (compare with None).
        queued = "" if obj.get("queued") is True else None
        return Ok(rid, _str(obj, "msgid") or None, queued)
    if kind == "error":
        code, message = _str(obj, "code") or "error", _str(obj, "message")
        return Error(rid, code, message, delivered=obj.get("delivered") is True)
    if kind == "welcome":
        return Welcome(
            rid,
            _str(obj, "name"),
            _str(obj, "addr"),
            _str(obj, "server"),
            _optional_str(obj, "account"),
        )
    if kind == "users":
        users = tuple(
            UserInfo(
                _str(u, "name"),
                _str(u, "addr"),
                _optional_str(u, "account"),
                operator=u.get("operator") is True,
                voice=u.get("voice") is True,
            )
            for u in _objects(obj, "users")
        )
        return UserList(rid, users, _optional_str(obj, "room"))
    if kind == "pong":
        return Pong(rid)
    if kind == "bye":
        return Bye(_str(obj, "reason"), _str(obj, "message"))
    decode = _ROOM_EVENTS.get(kind) if isinstance(kind, str) else None
    return None if decode is None else decode(obj)


def _objects(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of the list ``obj[key]`` (anything else in it skipped)."""
    raw = obj.get(key)
    return [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def _strings(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    raw = obj.get(key)
    return tuple(a for a in raw if isinstance(a, str)) if isinstance(raw, list) else ()


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _joined(obj: dict[str, Any]) -> Joined:
    return Joined(
        obj.get("id"),
        _str(obj, "room"),
        _optional_str(obj, "topic"),
        _str(obj, "modes"),
        _count(obj, "members"),
        obj.get("operator") is True,
    )


def _topic(obj: dict[str, Any]) -> TopicInfo:
    # JSON does not say whether a topic event is a reply or a change told to the
    # members: a change carries no id (a reply always answers a request's id).
    time = obj.get("time")
    return TopicInfo(
        obj.get("id"),
        _str(obj, "room"),
        _optional_str(obj, "topic"),
        _optional_str(obj, "by"),
        parse_iso_time(time) if isinstance(time, str) else None,
        changed=obj.get("id") is None,
    )


def _modes(obj: dict[str, Any]) -> ModesInfo:
    listing = next((flag for flag, key in LIST_NAMES.items() if key in obj), "b")
    key = LIST_NAMES[listing]
    masks = _strings(obj, key) if key in obj else None
    return ModesInfo(
        obj.get("id"),
        _str(obj, "room"),
        _str(obj, "modes"),
        _strings(obj, "args"),
        masks,
        listing=listing,
    )


def _rooms(obj: dict[str, Any]) -> RoomList:
    rooms = tuple(
        RoomInfo(_str(r, "room"), _count(r, "members"), _optional_str(r, "topic"))
        for r in _objects(obj, "rooms")
    )
    return RoomList(obj.get("id"), rooms)


_ROOM_EVENTS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "joined": _joined,
    "join": lambda o: RoomJoin(_str(o, "room"), _str(o, "name"), _str(o, "addr")),
    "part": lambda o: RoomPart(
        _str(o, "room"), _str(o, "name"), _str(o, "addr"), _optional_str(o, "reason")
    ),
    "topic": _topic,
    "kick": lambda o: RoomKicked(
        _str(o, "room"), _str(o, "name"), _str(o, "by"), _optional_str(o, "reason")
    ),
    "mode": lambda o: ModesChanged(
        _str(o, "room"), _str(o, "by"), _str(o, "changes"), _strings(o, "args")
    ),
    "modes": _modes,
    "invite": lambda o: Invited(_str(o, "room"), _str(o, "by")),
    "rooms": _rooms,
}


def _message(obj: dict[str, Any]) -> ChatMessage:
    to = obj.get("to")
    return ChatMessage(
        _str(obj, "from"),
        _str(obj, "addr"),
        to if isinstance(to, str) else None,
        _str(obj, "text"),
        parse_iso_time(obj.get("time")),
        _str(obj, "msgid") or None,
        _optional_str(obj, "account"),
        _optional_str(obj, "room") if to is None else None,
        edited=parse_iso_time(obj["edited"]) if isinstance(obj.get("edited"), str) else None,
    )


def _amended(obj: dict[str, Any]) -> MessageDeleted | MessageEdited:
    """A ``deleted`` or ``edited`` event (docs/integrations.md, "Delete and edit")."""
    msgid, room, by = _str(obj, "msgid"), _str(obj, "room"), _optional_str(obj, "by")
    if obj.get("type") == "deleted":
        return MessageDeleted(msgid, room, by)
    return MessageEdited(
        msgid, room, by or "", _str(obj, "text"), parse_iso_time(obj.get("edited"))
    )


class ClientConnection:
    """A JSON Lines client's protocol state: server bytes in, events out.

    Lines that are not JSON objects (the text lines a server sends before the welcome,
    or a refusal such as "the server is full") come out as :class:`Notice` events.
    """

    __slots__ = ("_framer",)

    def __init__(self, *, max_line: int = CLIENT_MAX_LINE) -> None:
        self._framer = LineFramer(max_line)

    def receive_data(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for line in self._framer.feed(data):
            if not line:
                continue  # empty, or over CLIENT_MAX_LINE: nothing to act on
            text = line.decode(errors="replace")
            if not text.startswith("{"):
                events.append(Notice(text))
                continue
            try:
                obj = load_json(text)
            except ValueError:
                events.append(Notice(text))
                continue
            if isinstance(obj, dict):
                event = decode_event(obj)
                if event is not None:
                    events.append(event)
        return events
