"""The client's side of JSON Lines: requests out, server lines in as events."""

from __future__ import annotations

import json
from typing import Any

from imkit.protocol.commands import (
    Command,
    Hello,
    History,
    Login,
    Passwd,
    Ping,
    PrivateMessage,
    PublicMessage,
    Rename,
    Who,
)
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
        raise TypeError(f"{type(command).__name__} is not sent by clients")
    if command.id is not None:
        fields["id"] = command.id
    return (json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


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
    if kind == "history":
        raw = obj.get("messages")
        messages = tuple(
            _message(m) for m in (raw if isinstance(raw, list) else []) if isinstance(m, dict)
        )
        return HistoryPage(rid, messages, obj.get("more") is True)
    if kind == "presence":
        return Presence(_str(obj, "name"), _str(obj, "addr"), obj.get("status") == "online")
    if kind == "rename":
        reason = obj.get("reason")
        reason = reason if isinstance(reason, str) else None
        return NameChange(_str(obj, "old"), _str(obj, "new"), _str(obj, "addr"), reason)
    if kind == "notice":
        return ServerNotice(_str(obj, "code"), _str(obj, "message"))
    if kind == "ok":
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
        raw = obj.get("users")
        users = tuple(
            UserInfo(_str(u, "name"), _str(u, "addr"), _optional_str(u, "account"))
            for u in (raw if isinstance(raw, list) else [])
            if isinstance(u, dict)
        )
        return UserList(rid, users)
    if kind == "pong":
        return Pong(rid)
    if kind == "bye":
        return Bye(_str(obj, "reason"), _str(obj, "message"))
    return None


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
