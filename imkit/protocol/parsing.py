"""Lines into commands: the text mode's commands and the JSON Lines requests."""

from __future__ import annotations

import json
import math
from typing import Any

from imkit.protocol.codes import (
    BAD_REQUEST,
    BAD_ROOM_NAME,
    HISTORY_DEFAULT,
    HISTORY_MAX,
    INVALID_MESSAGE,
    PROTOCOL_VERSION,
    RequestId,
)
from imkit.protocol.commands import (
    Command,
    Hello,
    History,
    Invalid,
    ListRooms,
    Login,
    Passwd,
    Ping,
    PrivateMessage,
    PublicMessage,
    Rename,
    RoomMessage,
    Who,
)
from imkit.protocol.edits import JSON_TYPES as EDIT_TYPES
from imkit.protocol.edits import TEXT_HEADS as EDIT_HEADS
from imkit.protocol.edits import parse_json_edit, parse_text_edit, text_problem
from imkit.protocol.room_requests import (
    JSON_TYPES,
    TEXT_HEADS,
    RoomRequestError,
    parse_json_room,
    parse_text_room,
    room_field,
)
from imkit.rules.msgid import parse_msgid
from imkit.rules.rooms import room_problem
from imkit.rules.search import QueryError, query_words

# Commands whose first field is a room when it begins with '#' (a user's name cannot).
_ROOM_OR_NOT = frozenset({"to", "who", "history"})


def invalid(code: str, message: str, request_id: RequestId = None) -> Invalid:
    return Invalid(id=request_id, code=code, message=message)


def parse_text(text: str) -> Command:
    """One text-mode line (already decoded, newline removed, not empty)."""
    # One partition instead of a startswith per command: most lines are messages.
    head, bar, rest = text.partition("|")
    if not bar:
        if text == "who":
            return Who()
        return ListRooms() if text == "rooms" else PublicMessage(text=text)
    if head in TEXT_HEADS or (head in _ROOM_OR_NOT and rest.startswith("#")):
        return parse_text_room(head, rest)
    if head in EDIT_HEADS:
        return parse_text_edit(head, rest)
    if head == "to":
        name, bar, body = rest.partition("|")
        if not bar or not body:
            return invalid(INVALID_MESSAGE, "use to|NAME|TEXT with a non-empty TEXT")
        return PrivateMessage(to=name, text=body)
    if head == "rename":
        return Rename(name=rest)
    if head == "history":
        # Every line that starts so is the command: a malformed one is never broadcast.
        if rest.isascii() and rest.isdigit() and 1 <= int(rest) <= HISTORY_MAX:
            return History(limit=int(rest))
        return invalid(BAD_REQUEST, f"use history|N with N from 1 to {HISTORY_MAX}")
    if head == "search":
        return text_search(rest)
    if head == "login":
        # Like every command, never broadcast when malformed; and never echoed or logged.
        name, bar, password = rest.partition("|")
        if not bar or not name or not password:
            return invalid(BAD_REQUEST, "use login|NAME|PASSWORD")
        return Login(name=name, password=password)
    if head == "passwd":
        old, bar, new = rest.partition("|")
        if not bar or not old or not new:
            return invalid(BAD_REQUEST, "use passwd|OLD|NEW (OLD without '|')")
        return Passwd(old=old, new=new)
    return PublicMessage(text=text)


def text_search(rest: str) -> Command:
    """``search|#ROOM|WORDS`` or ``search|WORDS`` (the lobby): the newest HISTORY_DEFAULT
    matches. Every line that starts so is the command, never broadcast when malformed."""
    room: str | None = None
    if rest.startswith("#"):
        room, bar, rest = rest.partition("|")
        if not bar:
            return invalid(BAD_REQUEST, "use search|#ROOM|WORDS or search|WORDS")
        problem = room_problem(room)
        if problem is not None:
            return invalid(BAD_ROOM_NAME, f"{room!r} is not a room's name: {problem}")
    try:
        query_words(rest)
    except QueryError as error:
        return invalid(BAD_REQUEST, f"{error}: use search|#ROOM|WORDS or search|WORDS")
    return History(room=room, query=rest)


def _id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a request id (echoed in the reply), or None when it can."""
    if isinstance(value, str):
        # Checked like every string field, and here first: an id is echoed in the reply,
        # and one that cannot be encoded would end the connection while answering.
        return None if _encodable(value) else "field 'id' is not valid Unicode"
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return None
    return "field 'id' must be a string or a number"


def _encodable(value: str) -> bool:
    # json.loads accepts "\ud800", which cannot be sent on as UTF-8.
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _string_field(obj: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _ShapeError(f"field {key!r} is required")
        return None
    if not isinstance(value, str):
        raise _ShapeError(f"field {key!r} must be a string")
    if not _encodable(value):
        raise _ShapeError(f"field {key!r} is not valid Unicode")
    return value


class _ShapeError(Exception):
    """A JSON request of the wrong shape; the message says what is wrong."""


def parse_json_request(obj: object) -> Command:
    """One decoded JSON value received in JSON mode."""
    if not isinstance(obj, dict):
        return invalid(BAD_REQUEST, "a request must be a JSON object")
    request_id = obj.get("id")
    id_problem = _id_problem(request_id)
    if id_problem is not None:
        return invalid(BAD_REQUEST, id_problem)  # without the id: it cannot be echoed
    kind = obj.get("type")
    try:
        if kind == "message":
            text = _string_field(obj, "text", required=True)
            assert text is not None
            to = _string_field(obj, "to", required=False)
            problem = text_problem(text)
            if problem is not None:
                return invalid(INVALID_MESSAGE, problem, request_id)
            room = room_field(obj, _string_field)
            if room is not None:
                if to is not None:
                    raise _ShapeError("a message has 'to' or 'room', not both")
                return RoomMessage(id=request_id, room=room, text=text)
            if to is None:
                return PublicMessage(id=request_id, text=text)
            return PrivateMessage(id=request_id, to=to, text=text)
        if kind == "who":
            return Who(id=request_id, room=room_field(obj, _string_field))
        if kind in JSON_TYPES:
            return parse_json_room(kind, obj, request_id, _string_field)
        if kind in EDIT_TYPES:
            return parse_json_edit(kind, obj, request_id, _string_field)
        if kind == "ping":
            return Ping(id=request_id)
        if kind == "rename":
            name = _string_field(obj, "name", required=True)
            assert name is not None
            return Rename(id=request_id, name=name)
        if kind == "history":
            return _history(obj, request_id)
        if kind == "login":
            name = _string_field(obj, "name", required=True)
            password = _string_field(obj, "password", required=True)
            assert name is not None and password is not None
            return Login(id=request_id, name=name, password=password)
        if kind == "passwd":
            old = _string_field(obj, "old", required=True)
            new = _string_field(obj, "new", required=True)
            assert old is not None and new is not None
            return Passwd(id=request_id, old=old, new=new)
        if kind == "hello":
            version = obj.get("v", PROTOCOL_VERSION)
            if version != PROTOCOL_VERSION or isinstance(version, bool):
                raise _ShapeError(f"unsupported protocol version {version!r}; this is v1")
            return Hello(
                id=request_id,
                name=_string_field(obj, "name", required=False),
                password=_string_field(obj, "password", required=False),
                login=_login_field(obj),
            )
    except _ShapeError as problem:
        return invalid(BAD_REQUEST, str(problem), request_id)
    except RoomRequestError as error:
        return invalid(error.code, str(error), request_id)
    if not isinstance(kind, str):
        return invalid(BAD_REQUEST, "field 'type' must name the request", request_id)
    return invalid(BAD_REQUEST, f"unknown request type {kind!r}", request_id)


def _login_field(obj: dict[str, Any]) -> tuple[str, str] | None:
    """A hello's ``login``: ``{"name": NAME, "password": PASSWORD}``."""
    login = obj.get("login")
    if login is None:
        return None
    if not isinstance(login, dict):
        raise _ShapeError("field 'login' must be an object with 'name' and 'password'")
    name = _string_field(login, "name", required=True)
    password = _string_field(login, "password", required=True)
    assert name is not None and password is not None
    return name, password


def _history(obj: dict[str, Any], request_id: RequestId) -> History:
    limit = obj.get("limit", HISTORY_DEFAULT)
    if limit is None:
        limit = HISTORY_DEFAULT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX:
        raise _ShapeError(f"field 'limit' must be a whole number from 1 to {HISTORY_MAX}")
    before = _string_field(obj, "before", required=False)
    if before is not None and parse_msgid(before) is None:
        raise _ShapeError("field 'before' must be a msgid from a message event")
    with_ = _string_field(obj, "with", required=False)
    room = room_field(obj, _string_field)
    if room is not None and with_ is not None:
        raise _ShapeError("a history request has 'with' or 'room', not both")
    query = _string_field(obj, "query", required=False)
    if query is not None:
        if with_ is not None:
            raise _ShapeError("a search covers the lobby or a room, not a conversation")
        try:
            query_words(query)
        except QueryError as error:
            raise _ShapeError(str(error)) from None
    return History(id=request_id, limit=limit, before=before, with_=with_, room=room, query=query)


def load_json(text: str) -> object:
    """The JSON value of ``text``; raises ValueError for anything that is not JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def looks_like_hello(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        obj = load_json(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("type") == "hello":
        return obj
    return None
