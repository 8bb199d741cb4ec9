"""Deleting and editing a message over IRC (docs/irc.md, "Deleting and editing"):
IRCv3's ``draft/message-redaction``. ``REDACT <target> <msgid> [:reason]`` from a
client is a delete of that channel's message (the hub decides who may; a channel the
client is not in, or a nick, is ``INVALID_TARGET``: private messages are not covered);
a deletion is told as a ``REDACT`` (with its reason) to the clients that negotiated the
capability, and as a ``NOTICE`` to the channel to the others. An edit has no IRC
standard: every IRC client gets a ``NOTICE`` to the channel from the editor, ``edited
MSGID: TEXT``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imkit.irc import numerics
from imkit.irc.message import Message, clean, line, split_text, trailing_line
from imkit.irc.names import prefix, shown
from imkit.irc.requests import HANDLERS, need, registrar
from imkit.protocol import Command, Error
from imkit.protocol.edits import DeleteMessage, MessageDeleted, MessageEdited
from imkit.rules.msgid import parse_msgid
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection

CAPABILITY = "draft/message-redaction"
handles = registrar(HANDLERS)
# imkit's error codes as REDACT's standard replies (FAIL REDACT CODE target msgid).
_FAILS = {"no_such_message": "UNKNOWN_MSGID", "not_allowed": "REDACT_FORBIDDEN"}


@handles("REDACT")
def _redact(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 2)
    if missing:
        return missing
    target, msgid = message.params[0], message.params[1]
    if not target.startswith("#") or room_key(target) not in conn.channels:
        why = "You are not in that channel" if target.startswith("#") else "Not a channel"
        return [conn.answer(numerics.fail(conn, "REDACT", "INVALID_TARGET", target, why))]
    if parse_msgid(msgid) is None:
        fail = numerics.fail(conn, "REDACT", "UNKNOWN_MSGID", target, msgid, "No such message")
        return [conn.answer(fail)]
    reason = message.params[2] if len(message.params) > 2 and message.params[2] else None
    rid = conn.ask("REDACT", target, msgid)
    return [DeleteMessage(id=rid, msgid=msgid, room=target, reason=reason)]


def failed(conn: IrcConnection, event: Error, context: tuple[str, ...]) -> str:
    """The reply to a REDACT that the hub refused."""
    code = _FAILS.get(event.code, event.code.upper())
    return numerics.fail(conn, "REDACT", code, *context, clean(event.message))


def render_amended(event: MessageDeleted | MessageEdited, form: frozenset[str]) -> str:
    """A deletion or an edit, for every IRC client of ``form``."""
    source = None
    if event.by is not None:
        source = prefix(event.by, event.by_addr) if event.by_addr else shown(event.by)
    if isinstance(event, MessageEdited):  # split as a long message is (render.chat_line)
        text = clean(f"edited {event.msgid}: {event.text}")
        head = trailing_line(source, "NOTICE", event.room, "")[:-2]
        pieces = split_text(head, text)
        return "".join(trailing_line(source, "NOTICE", event.room, p) for p in pieces)
    reason = clean(event.reason) if event.reason else None
    if CAPABILITY in form:
        if reason is None:
            return line(source, "REDACT", event.room, event.msgid)
        return trailing_line(source, "REDACT", event.room, event.msgid, reason)
    notice = f"deleted message {event.msgid}" + (f": {reason}" if reason else "")
    return trailing_line(source, "NOTICE", event.room, notice)
