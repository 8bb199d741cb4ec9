"""What the server tells a client, and its bytes: each :class:`Event` knows both of its
wire forms, and :class:`Frame` encodes one event for many recipients at most once per
mode."""

from __future__ import annotations

import json
import re
from typing import Any

from imkit.protocol.codes import (
    INVALID_MESSAGE,
    NAME_TAKEN,
    NO_SUCH_USER,
    PROTOCOL_VERSION,
    Mode,
    RequestId,
)
from imkit.protocol.records import record
from imkit.rules.times import iso_time

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


@record
class UserInfo:
    name: str
    addr: str
    account: str | None = None  # the account it is logged in to
    # In a room's list (who|#ROOM): its standing there (docs/rooms.md).
    operator: bool = False
    voice: bool = False


class Event:
    """Something the server tells a client, in either wire form."""

    __slots__ = ()

    def text_line(self) -> str | None:
        """The text-mode line(s) without the final newline; None: not shown in text mode."""
        raise NotImplementedError  # pragma: no cover - abstract: every Event overrides it

    def json_fields(self) -> dict[str, Any]:
        """The JSON object, ``type`` included."""
        raise NotImplementedError  # pragma: no cover - abstract: every Event overrides it


@record
class Welcome(Event):
    id: RequestId
    name: str
    addr: str
    server: str
    account: str | None = None  # a hello with a login: the account logged in to
    # What this server offers beyond the basics ("history", "accounts", "cluster"), so
    # that a client (the web page) knows what to show: the hub's ``features``.
    features: tuple[str, ...] = ()

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "id": self.id,
            "name": self.name,
            "addr": self.addr,
            "server": self.server,
            "account": self.account,
            "features": list(self.features),
            "v": PROTOCOL_VERSION,
        }


@record
class UserList(Event):
    id: RequestId
    users: tuple[UserInfo, ...]
    room: str | None = None  # a room's members (None: the lobby's, as in the seed)
    secret: bool = False  # the room is secret (+s): IRC's NAMES says so

    def text_line(self) -> str:
        if self.room is None:
            return "\n".join(f"[{u.addr}]{u.name}:online..." for u in self.users)
        if not self.users:
            return f"{self.room} * no members"
        return "\n".join(
            f"{self.room} [{u.addr}]{u.name}:online...{_standing(u)}" for u in self.users
        )

    def json_fields(self) -> dict[str, Any]:
        if self.room is None:
            users = [{"name": u.name, "addr": u.addr, "account": u.account} for u in self.users]
            return {"type": "users", "id": self.id, "users": users}
        listed = [
            {
                "name": u.name,
                "addr": u.addr,
                "account": u.account,
                "operator": u.operator,
                "voice": u.voice,
            }
            for u in self.users
        ]
        return {"type": "users", "id": self.id, "room": self.room, "users": listed}


def _standing(user: UserInfo) -> str:
    return " (operator)" if user.operator else " (voice)" if user.voice else ""


@record
class Pong(Event):
    id: RequestId

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {"type": "pong", "id": self.id}


@record
class Ok(Event):
    """A message was accepted (text mode: nothing, as in the seed)."""

    id: RequestId
    msgid: str | None = None  # the message's id; its ok comes once it is stored
    # A private message kept for an offline account: its name (text mode says so).
    queued: str | None = None

    def text_line(self) -> str | None:
        if self.queued is None:
            return None
        name = one_line(self.queued)
        return f"{name} is offline; the message will be delivered when {name} logs in"

    def json_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"type": "ok", "id": self.id}
        if self.msgid is not None:
            fields["msgid"] = self.msgid
        if self.queued is not None:
            fields["queued"] = True
        return fields


@record
class LoginOk(Event):
    """A login worked: the user is ``name``, its account's name."""

    id: RequestId
    name: str

    def text_line(self) -> str:
        return f"you have logged in as {self.name}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "name": self.name, "account": self.name}


@record
class PasswdOk(Event):
    """A logged-in user's password was changed."""

    id: RequestId

    def text_line(self) -> str:
        return "your password has been changed"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id}


@record
class RenameOk(Event):
    id: RequestId
    name: str

    def text_line(self) -> str:
        return f"you have updated user name: {self.name}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "name": self.name}


@record
class Error(Event):
    id: RequestId
    code: str
    message: str
    # The name the error is about; the seed's text lines for name_taken include it.
    subject: str | None = None
    # unavailable only: the message reached the users online, but was not stored.
    delivered: bool = False

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
        fields: dict[str, Any] = {
            "type": "error",
            "id": self.id,
            "code": self.code,
            "message": message,
        }
        if self.delivered:
            fields["delivered"] = True
        return fields


@record
class ChatMessage(Event):
    sender: str
    addr: str
    to: str | None
    text: str
    time: float  # seconds since the epoch, rendered as ISO-8601 UTC in JSON mode
    msgid: str | None = None  # imkit.rules.msgid: unique, ordered; the same in history
    account: str | None = None  # the sender's account when it was logged in
    # A public message's room (docs/rooms.md): its name, the lobby's too; ``lobby``: it
    # is the lobby, whose text lines are the seed's, without the room's name before them.
    room: str | None = None
    lobby: bool = False
    notice: bool = False  # sent as an IRC NOTICE (IRC users see one; others a message)
    bot: bool = False  # posted by a webhook (docs/integrations.md): "bot": true in JSON;
    # it never triggers an outgoing hook
    edited: float | None = None  # when its author last changed its text (history)

    def text_line(self) -> str:
        if self.to is not None:
            return f"{self.sender} say: {self.text}"
        if self.room is None or self.lobby:
            return f"[{self.addr}]{self.sender}:{self.text}"
        return f"{self.room} [{self.addr}]{self.sender}:{self.text}"

    def past_line(self) -> str:
        """The text-mode line of a message shown again later (history, replay): it
        starts with ``past`` and the time (after a room's name), never with ``[`` like a
        live message."""
        when = iso_time(self.time, milliseconds=False)
        if self.edited is not None:  # before the text: what follows ':' is the text
            when += " edited"
        if self.to is None and self.room is not None and not self.lobby:
            return f"{self.room} past {when} [{self.addr}]{self.sender}:{self.text}"
        return f"past {when} {self.text_line()}"

    def json_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "type": "message",
            "from": self.sender,
            "addr": self.addr,
            "to": self.to,
            "text": self.text,
            "time": iso_time(self.time),
            "account": self.account,
        }
        if self.msgid is not None:
            fields["msgid"] = self.msgid
        if self.room is not None:
            fields["room"] = self.room
        if self.bot:
            fields["bot"] = True
        if self.edited is not None:
            fields["edited"] = iso_time(self.edited)
        return fields


@record
class KeptMessage(Event):
    """A private message that waited for its recipient to log in: in JSON mode the
    usual message event (its time and msgid are the original ones), in text mode the
    private line shown again, with its time (:meth:`ChatMessage.past_line`)."""

    message: ChatMessage

    def text_line(self) -> str:
        return self.message.past_line()

    def json_fields(self) -> dict[str, Any]:
        return self.message.json_fields()


@record
class HistoryPage(Event):
    """Past public messages, oldest first; ``more``: older ones are kept too.

    The reply to a history request, and a text client's replay on connect (``id``
    None). Text mode shows each as a :meth:`ChatMessage.past_line`, and nothing at
    all for an empty page.
    """

    id: RequestId
    messages: tuple[ChatMessage, ...]
    more: bool = False
    before: str | None = None  # a search stopped early: where to go on (store.base.Page)

    def text_line(self) -> str | None:
        if not self.messages:
            return None
        return "\n".join(message.past_line() for message in self.messages)

    def json_fields(self) -> dict[str, Any]:
        messages = [message.json_fields() for message in self.messages]
        fields = {"type": "history", "id": self.id, "messages": messages, "more": self.more}
        if self.before is not None:
            fields["before"] = self.before
        return fields


@record
class Presence(Event):
    name: str
    addr: str
    online: bool
    reason: str | None = None  # why it went offline, when it said (an IRC QUIT's)

    def text_line(self) -> str:
        return f"[{self.addr}]{self.name}:{'user is online' if self.online else 'user offline'}"

    def json_fields(self) -> dict[str, Any]:
        status = "online" if self.online else "offline"
        return {"type": "presence", "name": self.name, "addr": self.addr, "status": status}


@record
class NameChange(Event):
    old: str
    new: str
    addr: str
    # Why, when the user did not ask for it: "conflict" (a cluster node that was cut
    # off came back and the name had been taken meanwhile; docs/cluster.md), "reserved"
    # (an account was made with the guest's name; docs/accounts.md).
    reason: str | None = None

    def text_line(self) -> str | None:
        if self.reason == "conflict":  # told only to the user renamed
            return (
                f"your name {self.old} was taken while your server was cut off from the chat;"
                f" you are now {self.new}"
            )
        if self.reason == "reserved":
            return f"the name {self.old} is now reserved for an account; you are now {self.new}"
        return None  # the seed tells nobody but the renamer

    def json_fields(self) -> dict[str, Any]:
        fields = {"type": "rename", "old": self.old, "new": self.new, "addr": self.addr}
        if self.reason is not None:
            fields["reason"] = self.reason
        return fields


@record
class ServerNotice(Event):
    """Something a user should know that is not a reply to it (messages_missed)."""

    code: str
    message: str

    def text_line(self) -> str:
        return f"notice: {one_line(self.message)}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "notice", "code": self.code, "message": one_line(self.message)}


@record
class Bye(Event):
    """Sent just before the server closes a connection."""

    reason: str  # idle, kicked, shutdown, slow_consumer, server_full, unauthorized
    message: str  # the text-mode line, and a sentence for people in JSON mode

    def text_line(self) -> str:
        # An operator's kick reason is part of the message: it must stay one line.
        return one_line(self.message)

    def json_fields(self) -> dict[str, Any]:
        return {"type": "bye", "reason": self.reason, "message": one_line(self.message)}


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
    """One event for many recipients, encoded at most once per wire mode; and for IRC
    connections at most once per distinct form (``forms``: the IRC wire's cache, keyed
    by the capabilities that change the line, :meth:`IrcConnection.frame_bytes`)."""

    __slots__ = ("event", "_text", "_json", "forms")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._text: bytes | None = None
        self._json: bytes | None = None
        self.forms: dict[Any, bytes] | None = None

    def for_wire(self, wire: Any) -> bytes:
        """The bytes for a connection whose protocol state is ``wire``."""
        mode = wire.mode
        if mode is Mode.JSON:
            return self.json
        if mode is Mode.IRC:
            data: bytes = wire.frame_bytes(self)
            return data
        return self.text

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
