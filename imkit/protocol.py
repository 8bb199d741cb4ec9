"""The imkit wire protocol, without I/O: bytes in, commands out; events in, bytes out.

One port speaks two line protocols (see docs/protocol.md):

* **text mode**, the IM-System seed's format byte for byte, so netcat, telnet and the
  seed's Go client work unchanged;
* **JSON Lines mode**, chosen by a first line that is a JSON object with
  ``"type": "hello"``, for programs.

:class:`ServerConnection` holds one client's framing buffer and mode; it turns received
bytes into :class:`Command` objects (bad input becomes an :class:`Invalid` command that
the hub answers with an error) and turns :class:`Event` objects into bytes for that
client's mode. Nothing here touches a socket, a clock or a task.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeAlias

from imkit.names import MAX_NAME_LENGTH

PROTOCOL_VERSION = 1

# A chat line, not a file transfer: 4 KiB holds several screens of text and keeps the
# per-connection framing buffer small. The operator can raise it with --max-line.
DEFAULT_MAX_LINE = 4096

# --max-line limits the *message text* (its UTF-8 bytes) in both modes, so that what
# netcat can send, `imkit send` can send too. A line may be longer by its envelope, up
# to a fixed allowance (docs/protocol.md, "Common rules"):
#
# * text mode: "to|NAME|" before the text; a name has at most 32 characters of at most
#   4 bytes each (an address, the name of a user who has not renamed, is shorter);
TEXT_LINE_ALLOWANCE = len("to||") + 4 * MAX_NAME_LENGTH  # 132 bytes
# * JSON mode: 1 KiB for the rest of the object (type, to, id), and room for the text
#   with every character escaped: \" and \\ take 2 bytes for 1, \uXXXX 6 bytes for a
#   2- or 3-byte character and a surrogate pair 12 for a 4-byte one: at most 3 times the
#   text. Only control characters escaped as \u00XX (6 bytes for 1) can exceed it.
JSON_LINE_ALLOWANCE = 1024
JSON_ESCAPE_FACTOR = 3


def text_line_limit(max_line: int) -> int:
    """The longest text-mode line (``to|NAME|TEXT``) when texts have ``max_line`` bytes."""
    return max_line + TEXT_LINE_ALLOWANCE


def json_line_limit(max_line: int) -> int:
    """The longest JSON line when texts have ``max_line`` bytes (13,312 for 4,096)."""
    return JSON_ESCAPE_FACTOR * max_line + JSON_LINE_ALLOWANCE


RequestId: TypeAlias = str | int | float | None


class Mode(Enum):
    """How a connection speaks. Until its first line it is served as text."""

    UNDECIDED = "undecided"
    TEXT = "text"
    JSON = "json"


# Stable error codes of the JSON protocol (docs/protocol.md lists each with its text line).
NO_SUCH_USER = "no_such_user"
NAME_TAKEN = "name_taken"
INVALID_NAME = "invalid_name"
INVALID_MESSAGE = "invalid_message"
LINE_TOO_LONG = "line_too_long"
INVALID_UTF8 = "invalid_utf8"
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Something a client asked for. ``id`` is echoed in the reply (JSON mode only)."""

    id: RequestId = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Command):
    version: int = PROTOCOL_VERSION
    name: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(Command):
    """The text-mode first line ``pass|SECRET``."""

    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicMessage(Command):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateMessage(Command):
    to: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Who(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(Command):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid(Command):
    """A line that could not be understood; the hub replies with this error."""

    code: str
    message: str


# ----------------------------------------------------------------------------- events

# C0 and C1 control characters (CR, LF, ESC, NEL...) and the Unicode line and paragraph
# separators: any of them in a text-mode line could end it early or redraw the terminal.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """``text`` with each run of control characters (CR and LF included) made one space.

    For every text imkit itself puts into a line (bye and error messages, an operator's
    kick reason among them), so that none can forge a second line. Chat text is never
    passed through it: it is relayed as sent, like the seed does.
    """
    return _LINE_BREAKING.sub(" ", text)


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    addr: str


class Event:
    """Something the server tells a client, in either wire form."""

    __slots__ = ()

    def text_line(self) -> str | None:
        """The text-mode line(s) without the final newline; None: not shown in text mode."""
        raise NotImplementedError  # pragma: no cover - abstract: every Event overrides it

    def json_fields(self) -> dict[str, Any]:
        """The JSON object, ``type`` included."""
        raise NotImplementedError  # pragma: no cover - abstract: every Event overrides it


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    id: RequestId
    name: str
    addr: str
    server: str

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "id": self.id,
            "name": self.name,
            "addr": self.addr,
            "server": self.server,
            "v": PROTOCOL_VERSION,
        }


@dataclass(frozen=True, slots=True)
class UserList(Event):
    id: RequestId
    users: tuple[UserInfo, ...]

    def text_line(self) -> str:
        return "\n".join(f"[{u.addr}]{u.name}:online..." for u in self.users)

    def json_fields(self) -> dict[str, Any]:
        users = [{"name": u.name, "addr": u.addr} for u in self.users]
        return {"type": "users", "id": self.id, "users": users}


@dataclass(frozen=True, slots=True)
class Pong(Event):
    id: RequestId

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {"type": "pong", "id": self.id}


@dataclass(frozen=True, slots=True)
class Ok(Event):
    """A message was accepted (text mode: nothing, as in the seed)."""

    id: RequestId

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id}


@dataclass(frozen=True, slots=True)
class RenameOk(Event):
    id: RequestId
    name: str

    def text_line(self) -> str:
        return f"you have updated user name: {self.name}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Error(Event):
    id: RequestId
    code: str
    message: str
    # The name the error is about; the seed's text lines for name_taken include it.
    subject: str | None = None

    def text_line(self) -> str:
        # The seed's own lines where the seed had one, a clear "error: ..." otherwise.
        if self.code == NO_SUCH_USER:
            return "username not exist"
        if self.code == NAME_TAKEN:
            return f"{one_line(str(self.subject))} has existed..."
        if self.code == INVALID_MESSAGE:
            return "invalid message"
        return f"error: {one_line(self.message)}"

    def json_fields(self) -> dict[str, Any]:
        # The same sentence as in text mode: a JSON client may print it to a terminal.
        message = one_line(self.message)
        return {"type": "error", "id": self.id, "code": self.code, "message": message}


@dataclass(frozen=True, slots=True)
class ChatMessage(Event):
    sender: str
    addr: str
    to: str | None
    text: str
    time: float  # seconds since the epoch, rendered as ISO-8601 UTC in JSON mode

    def text_line(self) -> str:
        if self.to is None:
            return f"[{self.addr}]{self.sender}:{self.text}"
        return f"{self.sender} say: {self.text}"

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "message",
            "from": self.sender,
            "addr": self.addr,
            "to": self.to,
            "text": self.text,
            "time": iso_time(self.time),
        }


@dataclass(frozen=True, slots=True)
class Presence(Event):
    name: str
    addr: str
    online: bool

    def text_line(self) -> str:
        return f"[{self.addr}]{self.name}:{'user is online' if self.online else 'user offline'}"

    def json_fields(self) -> dict[str, Any]:
        status = "online" if self.online else "offline"
        return {"type": "presence", "name": self.name, "addr": self.addr, "status": status}


@dataclass(frozen=True, slots=True)
class NameChange(Event):
    old: str
    new: str
    addr: str

    def text_line(self) -> None:
        return None  # the seed tells nobody but the renamer

    def json_fields(self) -> dict[str, Any]:
        return {"type": "rename", "old": self.old, "new": self.new, "addr": self.addr}


@dataclass(frozen=True, slots=True)
class Bye(Event):
    """Sent just before the server closes a connection."""

    reason: str  # idle, kicked, shutdown, slow_consumer, server_full, unauthorized
    message: str  # the text-mode line, and a sentence for people in JSON mode

    def text_line(self) -> str:
        # An operator's kick reason is part of the message: it must stay one line.
        return one_line(self.message)

    def json_fields(self) -> dict[str, Any]:
        return {"type": "bye", "reason": self.reason, "message": one_line(self.message)}


def iso_time(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-27T07:00:00.123Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_text(event: Event) -> bytes:
    line = event.text_line()
    return b"" if line is None else (line + "\n").encode()


def encode_json(event: Event) -> bytes:
    fields = event.json_fields()
    if fields.get("id", 0) is None:
        del fields["id"]
    return (json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def encode(event: Event, mode: Mode) -> bytes:
    """The bytes of ``event`` for a client in ``mode`` (b"" when that mode does not show it)."""
    return encode_json(event) if mode is Mode.JSON else encode_text(event)


class Frame:
    """One event for many recipients, encoded at most once per wire mode."""

    __slots__ = ("event", "_text", "_json")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._text: bytes | None = None
        self._json: bytes | None = None

    @property
    def text(self) -> bytes:
        if self._text is None:
            self._text = encode_text(self.event)
        return self._text

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = encode_json(self.event)
        return self._json


# ---------------------------------------------------------------------------- framing


class LineFramer:
    """Splits a byte stream into lines of at most ``max_line`` bytes.

    Lines end in ``\\n``; one trailing ``\\r`` is dropped. A longer line is reported once
    (as None) as soon as it is known to be too long, and the rest of it, up to the next
    newline, is discarded rather than read as new lines. The buffer never holds more than
    ``max_line + 1`` bytes (when :attr:`max_line` is lowered, the old limit + 1 until the
    next feed).
    """

    __slots__ = ("_max", "_partial", "_discarding")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max = max_line
        self._partial = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return []
            data = data[newline + 1 :]
            self._discarding = False
        if self._partial:
            data = self._partial + data
        parts = data.split(b"\n")
        rest = parts.pop()
        limit = self._max
        lines: list[bytes | None] = []
        for part in parts:
            if part[-1:] == b"\r":
                part = part[:-1]
            lines.append(part if len(part) <= limit else None)
        # One byte of slack for a "\r" that will be dropped when the newline comes.
        if len(rest) > limit + 1:
            lines.append(None)
            self._discarding = True
            rest = b""
        self._partial = rest
        return lines

    @property
    def max_line(self) -> int:
        return self._max

    @max_line.setter
    def max_line(self, max_line: int) -> None:
        # Takes effect from the next feed; a longer partial line is then reported.
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max = max_line

    @property
    def buffered(self) -> int:
        return len(self._partial)


# ---------------------------------------------------------------------------- parsing


def _invalid(code: str, message: str, request_id: RequestId = None) -> Invalid:
    return Invalid(id=request_id, code=code, message=message)


def parse_text(text: str) -> Command:
    """One text-mode line (already decoded, newline removed, not empty)."""
    if text == "who":
        return Who()
    if text.startswith("rename|"):
        return Rename(name=text[7:])
    if text.startswith("to|"):
        name, bar, body = text[3:].partition("|")
        if not bar or not body:
            return _invalid(INVALID_MESSAGE, "use to|NAME|TEXT with a non-empty TEXT")
        return PrivateMessage(to=name, text=body)
    return PublicMessage(text=text)


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
        return _invalid(BAD_REQUEST, "a request must be a JSON object")
    request_id = obj.get("id")
    id_problem = _id_problem(request_id)
    if id_problem is not None:
        return _invalid(BAD_REQUEST, id_problem)  # without the id: it cannot be echoed
    kind = obj.get("type")
    try:
        if kind == "message":
            text = _string_field(obj, "text", required=True)
            assert text is not None
            to = _string_field(obj, "to", required=False)
            if not text:
                return _invalid(INVALID_MESSAGE, "the message text is empty", request_id)
            if "\n" in text or "\r" in text:
                return _invalid(INVALID_MESSAGE, "the message text must be one line", request_id)
            if to is None:
                return PublicMessage(id=request_id, text=text)
            return PrivateMessage(id=request_id, to=to, text=text)
        if kind == "who":
            return Who(id=request_id)
        if kind == "ping":
            return Ping(id=request_id)
        if kind == "rename":
            name = _string_field(obj, "name", required=True)
            assert name is not None
            return Rename(id=request_id, name=name)
        if kind == "hello":
            version = obj.get("v", PROTOCOL_VERSION)
            if version != PROTOCOL_VERSION or isinstance(version, bool):
                raise _ShapeError(f"unsupported protocol version {version!r}; this is v1")
            return Hello(
                id=request_id,
                name=_string_field(obj, "name", required=False),
                password=_string_field(obj, "password", required=False),
            )
    except _ShapeError as problem:
        return _invalid(BAD_REQUEST, str(problem), request_id)
    if not isinstance(kind, str):
        return _invalid(BAD_REQUEST, "field 'type' must name the request", request_id)
    return _invalid(BAD_REQUEST, f"unknown request type {kind!r}", request_id)


def _load_json(text: str) -> object:
    """The JSON value of ``text``; raises ValueError for anything that is not JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _looks_like_hello(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        obj = _load_json(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("type") == "hello":
        return obj
    return None


class ServerConnection:
    """One client's protocol state on the server side.

    Feed it what the socket delivered with :meth:`receive_data`; it returns the commands
    of every complete line. Encode what the client should receive with :meth:`encode`.

    ``max_line`` limits the UTF-8 bytes of a message's text; a line may be longer by its
    envelope (:func:`text_line_limit`, :func:`json_line_limit`), and the framer's buffer
    is bounded by the line limit of the connection's mode (JSON's until it is decided).
    """

    __slots__ = ("mode", "lines_received", "_max_line", "_framer")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.mode = Mode.UNDECIDED
        # Every line counts as activity for the idle timer, empty lines included.
        self.lines_received = 0
        self._max_line = max_line
        # The first line may be a hello: until the mode is known, allow a JSON line.
        self._framer = LineFramer(json_line_limit(max_line))

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held; at most the mode's line limit + 1."""
        return self._framer.buffered

    def receive_data(self, data: bytes) -> list[Command]:
        commands: list[Command] = []
        max_line = self._max_line
        for line in self._framer.feed(data):
            self.lines_received += 1
            if line is None:
                commands.append(self._line_too_long())
                continue
            if not line:
                continue
            if len(line) > max_line:
                # Rare, and only then is the text measured apart from its envelope.
                commands.append(self._receive_long_line(line))
                continue
            try:
                text = line.decode()
            except UnicodeDecodeError:
                commands.append(_invalid(INVALID_UTF8, "the line is not valid UTF-8; discarded"))
                continue
            commands.append(self._parse(text))
        return commands

    def _line_too_long(self) -> Invalid:
        # A line beyond its mode's limit. Text mode names --max-line, the limit its users
        # know (a longer line is only ever a private message's envelope).
        limit = self._framer.max_line if self.mode is Mode.JSON else self._max_line
        return _invalid(LINE_TOO_LONG, f"line too long (the limit is {limit} bytes); discarded")

    def _receive_long_line(self, line: bytes) -> Command:
        """A line longer than --max-line: a message whose text is within it, or an error.

        In JSON mode any request may be longer (up to the JSON line limit); in text mode
        only ``to|NAME|TEXT``, by its envelope. Like a line the framer refused, a line
        refused here as too long does not decide the mode.
        """
        mode = self.mode
        is_json = mode is Mode.JSON or (mode is Mode.UNDECIDED and line.startswith(b"{"))
        # Text mode checks the line limit here too, for lines framed while undecided.
        is_private = line.startswith(b"to|") and len(line) <= text_line_limit(self._max_line)
        if not (is_json or is_private):
            return self._line_too_long()
        try:
            text = line.decode()
        except UnicodeDecodeError:
            return _invalid(INVALID_UTF8, "the line is not valid UTF-8; discarded")
        if mode is Mode.JSON:
            return self._within_max_line(self._parse(text))
        if is_json:  # undecided: a hello decides JSON mode; any other line is text
            hello = _looks_like_hello(text)
            if hello is None:
                return self._line_too_long()
            self._decide(Mode.JSON)
            return parse_json_request(hello)
        command = parse_text(text)
        if not isinstance(command, PrivateMessage):  # "to|NAME" without a second "|"
            return self._line_too_long()
        if len(command.text.encode()) > self._max_line:
            return self._line_too_long()  # text mode has one answer for every long line
        if mode is Mode.UNDECIDED:
            self._decide(Mode.TEXT)
        return command

    def _within_max_line(self, command: Command) -> Command:
        """``command``, or a line_too_long error (with its id) when it is a message whose
        text passes --max-line."""
        if isinstance(command, PublicMessage | PrivateMessage):
            if len(command.text.encode()) > self._max_line:
                message = f"line too long: the message text is longer than {self._max_line} bytes"
                return _invalid(LINE_TOO_LONG, message, command.id)
        return command

    def _decide(self, mode: Mode) -> None:
        self.mode = mode
        limit = json_line_limit if mode is Mode.JSON else text_line_limit
        self._framer.max_line = limit(self._max_line)

    def _parse(self, text: str) -> Command:
        mode = self.mode
        if mode is Mode.TEXT:
            return parse_text(text)
        if mode is Mode.JSON:
            try:
                obj = _load_json(text)
            except ValueError as problem:
                return _invalid(BAD_REQUEST, f"malformed JSON: {problem}")
            return parse_json_request(obj)
        hello = _looks_like_hello(text)
        if hello is not None:
            self._decide(Mode.JSON)
            return parse_json_request(hello)
        self._decide(Mode.TEXT)
        if text.startswith("pass|"):
            return Authenticate(password=text[5:])
        return parse_text(text)

    def encode(self, event: Event) -> bytes:
        return encode(event, self.mode)


# ------------------------------------------------------------------ the client side

# A client reads the server's lines, and one `users` reply lists everyone online (about
# 60 bytes a user): 16 MiB is ample for 100,000 users and still bounds a bad server.
CLIENT_MAX_LINE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
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
    elif isinstance(command, Hello):
        fields = {"type": "hello", "v": command.version}
        if command.name is not None:
            fields["name"] = command.name
        if command.password is not None:
            fields["password"] = command.password
    else:
        raise TypeError(f"{type(command).__name__} is not sent by clients")
    if command.id is not None:
        fields["id"] = command.id
    return (json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def parse_iso_time(value: object) -> float:
    """The timestamp of an ``iso_time`` string (0.0 when it is missing or malformed)."""
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def decode_event(obj: dict[str, Any]) -> Event | None:
    """The event of one JSON object from the server; None for types this client does not
    know (the protocol may grow), so they can be skipped."""
    kind = obj.get("type")
    rid = obj.get("id")
    if kind == "message":
        to = obj.get("to")
        return ChatMessage(
            _str(obj, "from"),
            _str(obj, "addr"),
            to if isinstance(to, str) else None,
            _str(obj, "text"),
            parse_iso_time(obj.get("time")),
        )
    if kind == "presence":
        return Presence(_str(obj, "name"), _str(obj, "addr"), obj.get("status") == "online")
    if kind == "rename":
        return NameChange(_str(obj, "old"), _str(obj, "new"), _str(obj, "addr"))
    if kind == "ok":
        return RenameOk(rid, _str(obj, "name")) if "name" in obj else Ok(rid)
    if kind == "error":
        return Error(rid, _str(obj, "code") or "error", _str(obj, "message"))
    if kind == "welcome":
        return Welcome(rid, _str(obj, "name"), _str(obj, "addr"), _str(obj, "server"))
    if kind == "users":
        raw = obj.get("users")
        users = tuple(
            UserInfo(_str(u, "name"), _str(u, "addr"))
            for u in (raw if isinstance(raw, list) else [])
            if isinstance(u, dict)
        )
        return UserList(rid, users)
    if kind == "pong":
        return Pong(rid)
    if kind == "bye":
        return Bye(_str(obj, "reason"), _str(obj, "message"))
    return None


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
                obj = _load_json(text)
            except ValueError:
                events.append(Notice(text))
                continue
            if isinstance(obj, dict):
                event = decode_event(obj)
                if event is not None:
                    events.append(event)
        return events
