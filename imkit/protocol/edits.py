"""Deleting and editing a message (docs/integrations.md, "Delete and edit"): the two
requests, their parsing in either mode, and the two events every client that has the
message is told.

Text mode: ``delete|MSGID`` and ``edit|MSGID|TEXT``. JSON: ``{"type": "delete",
"msgid": ...}`` (optional: ``room``, where it must be; ``reason``) and ``{"type":
"edit", "msgid": ..., "text": ...}``. An edit's text follows a message's rules (not
empty, one line, at most ``--max-line`` bytes: the connection checks that last one).
The events' text lines start with the room's name (the lobby's too), a space and
``*``, like every room line, so none can pass for a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imkit.protocol.codes import BAD_REQUEST, INVALID_MESSAGE, RequestId
from imkit.protocol.commands import Command, Invalid
from imkit.protocol.events import Event, one_line
from imkit.protocol.records import record
from imkit.protocol.room_requests import room_field
from imkit.rules.msgid import parse_msgid
from imkit.rules.times import iso_time

# The heads of the text-mode lines, and the JSON request types, parsed here.
TEXT_HEADS = frozenset({"delete", "edit"})
JSON_TYPES = TEXT_HEADS


@record(kw_only=True)
class DeleteMessage(Command):
    """Delete the message ``msgid``: its author (an account), or its room's operator.
    ``room``: it must be that room's (the lobby's name: the lobby's), as IRC's REDACT
    names its channel; ``reason``: told with the deletion."""

    msgid: str
    room: str | None = None
    reason: str | None = None


@record(kw_only=True)
class EditMessage(Command):
    """Replace the text of the message ``msgid``: its author (an account) only."""

    msgid: str
    text: str


@record
class MessageDeleted(Event):
    """A message was deleted: told to everyone who may have it (its room's members)."""

    msgid: str
    room: str
    by: str | None  # who deleted it (its author, an operator); None: an administrator
    by_addr: str = ""  # its address as shown (an IRC line's source)
    reason: str | None = None

    def text_line(self) -> str:
        by = "an administrator" if self.by is None else self.by
        line = f"{self.room} * {by} deleted message {self.msgid}"
        return f"{line}: {one_line(self.reason)}" if self.reason else line

    def json_fields(self) -> dict[str, Any]:
        fields = {"type": "deleted", "msgid": self.msgid, "room": self.room, "by": self.by}
        if self.reason:
            fields["reason"] = self.reason
        return fields


@record
class MessageEdited(Event):
    """A message's text was replaced by its author, at ``time``."""

    msgid: str
    room: str
    by: str
    text: str
    time: float
    by_addr: str = ""  # the editor's address as shown (an IRC line's source)

    def text_line(self) -> str:
        # one_line: chat text is relayed as sent, but this line is imkit's own.
        return f"{self.room} * {self.by} edited message {self.msgid}: {one_line(self.text)}"

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "edited",
            "msgid": self.msgid,
            "room": self.room,
            "by": self.by,
            "text": self.text,
            "edited": iso_time(self.time),
        }


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a JSON message's (or an edit's) text, or None."""
    if not text:
        return "the message text is empty"
    if "\n" in text or "\r" in text:
        return "the message text must be one line"
    return None


def _msgid(value: str | None, rid: RequestId) -> str | Invalid:
    if value is None or parse_msgid(value) is None:
        return Invalid(id=rid, code=BAD_REQUEST, message="give the msgid of a message")
    return value


def parse_text_edit(head: str, rest: str) -> Command:
    """``delete|MSGID`` or ``edit|MSGID|TEXT`` (``head`` and what follows its '|')."""
    if head == "delete":
        found = _msgid(rest, None)
        if isinstance(found, Invalid):
            return Invalid(code=BAD_REQUEST, message="use delete|MSGID")
        return DeleteMessage(msgid=found)
    msgid, bar, text = rest.partition("|")
    if not bar or parse_msgid(msgid) is None:
        return Invalid(code=BAD_REQUEST, message="use edit|MSGID|TEXT")
    problem = text_problem(text)
    if problem is not None:
        return Invalid(code=INVALID_MESSAGE, message=problem)
    return EditMessage(msgid=msgid, text=text)


def parse_json_edit(
    kind: str, obj: dict[str, Any], rid: RequestId, string: Callable[..., str | None]
) -> Command:
    """A JSON ``delete`` or ``edit`` request (``string``: the parser's field reader,
    which raises its shape error for a field of the wrong type)."""
    found = _msgid(string(obj, "msgid", required=True), rid)
    if isinstance(found, Invalid):
        return found
    if kind == "delete":
        reason = string(obj, "reason", required=False)
        room = room_field(obj, string)
        return DeleteMessage(id=rid, msgid=found, room=room, reason=reason or None)
    text = string(obj, "text", required=True)
    assert text is not None
    problem = text_problem(text)
    if problem is not None:
        return Invalid(id=rid, code=INVALID_MESSAGE, message=problem)
    return EditMessage(id=rid, msgid=found, text=text)
