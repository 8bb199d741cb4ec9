"""Deleting and editing a message (docs/integrations.md, "Delete and edit"): the hub's
command table's entries (handed to the backend, which decides: one server here, with
:func:`amend_here`; a cluster node through Redis), and how the change is told to those
who may have the message (:func:`tell_amended`).

Who may: a message is seen by whoever may read its history (the lobby's: anyone; a
room's: its members); one it cannot see is ``no_such_message``, as one that does not
exist (a private message too: those are not covered). Its author (the account it was
sent from) may delete or edit it, a room's operator delete any message of its room; a
guest's message has no provable author, so nobody but an operator (or ``imkit history
delete``) removes it. The store changes first; only then are the others told, and the
requester gets its ``ok``: on a store that cannot write, nothing changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from imkit.hub.rooms import fan_out
from imkit.protocol import MUTED, UNAVAILABLE, ChatMessage, Command, Error, Event, Ok, RequestId
from imkit.protocol.codes import NO_SUCH_MESSAGE, NOT_ALLOWED
from imkit.protocol.edits import DeleteMessage, EditMessage, MessageDeleted, MessageEdited
from imkit.rules.msgid import parse_msgid
from imkit.rules.names import name_key
from imkit.rules.rooms import room_key
from imkit.store.base import MESSAGE_GONE

log = logging.getLogger("imkit.hub")

if TYPE_CHECKING:
    from collections.abc import Callable

    from imkit.hub.core import Hub
    from imkit.hub.members import Member


def edit_commands(hub: Hub) -> dict[type[Command], Callable[[Member, Any], None]]:
    """The entries of :meth:`Hub._command_table` for ``delete`` and ``edit``."""
    backend = hub.backend

    def edit(member: Member, command: EditMessage) -> None:
        until = member.muted_until  # a new text is speaking: a muted user may not
        if until is not None and until > hub.wall_clock():
            hub.send(member, Error(command.id, MUTED, "you are muted"))
            return
        backend.amend(member, command)

    return {DeleteMessage: backend.amend, EditMessage: edit}


Amend = DeleteMessage | EditMessage


def new_text(command: Amend) -> str | None:
    """The text an amend request sets (None: it deletes)."""
    return command.text if isinstance(command, EditMessage) else None


def no_such_message(rid: RequestId, msgid: str) -> Error:
    return Error(rid, NO_SUCH_MESSAGE, f"there is no message {msgid} that you can see")


def not_allowed(rid: RequestId, text: str | None, guest: bool) -> Error:
    if text is not None:
        why = "log in: only an account edits its messages" if guest else "not your message"
        return Error(rid, NOT_ALLOWED, f"you may not edit that message: {why}")
    why = "only its author (an account) or its room's operators may"
    return Error(rid, NOT_ALLOWED, f"you may not delete that message: {why}")


def amend_here(
    hub: Hub, member: Member, command: Amend, operator: Callable[[Member, str], bool]
) -> None:
    """One server: ``member`` deletes or edits a message; ``operator``: whether a member
    is an operator of the room of a key."""
    store, rid, msgid, text = hub.store, command.id, command.msgid, new_text(command)
    if store.problem is not None:
        hub.send(member, Error(rid, UNAVAILABLE, f"nothing was changed: {store.problem}"))
        return
    number = parse_msgid(msgid)
    assert number is not None, "the parser checks msgids"
    only = command.room if isinstance(command, DeleteMessage) else None

    def found(message: ChatMessage | None | str) -> None:
        if not member.online:
            return
        if isinstance(message, str):
            hub.send(member, Error(rid, UNAVAILABLE, f"nothing was changed: {message}"))
            return
        key = None if message is None or message.lobby else room_key(message.room or "")
        hidden = key is not None and key not in member.rooms
        elsewhere = only is not None and room_key(only) != (key or hub.lobby_key)
        if message is None or hidden or elsewhere:
            hub.send(member, no_such_message(rid, msgid))
            return
        mine = member.account is not None and name_key(message.account or "") == name_key(
            member.account
        )
        if not mine and not (text is None and key is not None and operator(member, key)):
            hub.send(member, not_allowed(rid, text, member.account is None))
            return
        edited = hub.wall_clock()
        done = partial(_changed, hub, member, command, message, edited)
        store.amend_message(number, text, edited, done)

    store.find_message(number, found)


def _changed(
    hub: Hub,
    member: Member,
    command: Amend,
    message: ChatMessage,
    edited: float,
    problem: str | None,
) -> None:
    rid, text = command.id, new_text(command)
    if problem == MESSAGE_GONE:  # deleted since it was found
        if member.online:
            hub.send(member, no_such_message(rid, message.msgid or ""))
        return
    if problem is not None:
        if member.online:
            hub.send(member, Error(rid, UNAVAILABLE, f"nothing was changed: {problem}"))
        return
    change = "deleted" if text is None else "edited"
    log.info(
        "message %s %s by %s",
        message.msgid,
        change,
        member.name,
        extra={"event": "message_changed", "change": change, "by": member.name},
    )
    room = message.room or hub.lobby
    key = None if message.lobby else room_key(room)
    reason = command.reason if isinstance(command, DeleteMessage) else None
    by = Author(member.name, member.shown_addr)
    tell_amended(hub, key, room, by, message.msgid or "", text, edited, reason)
    if member.online:
        hub.send(member, Ok(rid, message.msgid))


@dataclass(frozen=True, slots=True)
class Author:
    """Who deleted or edited a message: its name and address as shown."""

    name: str
    addr: str


def tell_amended(
    hub: Hub,
    key: str | None,
    room: str,
    by: Author | None,
    msgid: str,
    text: str | None,
    edited: float,
    reason: str | None = None,
) -> None:
    """Tell the users here who may have the message: the lobby's members (``key``
    None), or the room ``key``'s (``room``: its name); ``by`` None: an administrator."""
    here = None if key is None else hub.rooms.get(key)
    if key is not None and here is None:
        return  # nobody here is in the room
    if here is not None:
        room = here.name  # as the room is named now (as said, its case may differ)
    name, addr = (by.name, by.addr) if by is not None else (None, "")
    event: Event
    if text is None:
        event = MessageDeleted(msgid, room, name, addr, reason)
    else:
        event = MessageEdited(msgid, room, name or "", text, edited, addr)
    if here is None:
        hub.broadcast(event)
    else:
        fan_out(hub, here.members.values(), event)
