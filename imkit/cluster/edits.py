"""Deleting and editing a message on a cluster node (docs/integrations.md, "Delete and
edit"): the request is one ``amend.lua`` call, which decides (the same rules as
:mod:`imkit.hub.edits`) and changes the history in Redis; every node tells its own
users from the ``amend`` event it writes to the lobby's stream (``P:log``) or to the
room's, and the ``forget`` event of ``imkit history delete`` likewise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imkit.hub.edits import Amend, Author, new_text, no_such_message, not_allowed, tell_amended
from imkit.protocol import Ok
from imkit.protocol.codes import NO_SUCH_MESSAGE
from imkit.protocol.edits import DeleteMessage
from imkit.rules.msgid import format_msgid, parse_msgid
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.cluster.backend import RedisBackend
    from imkit.hub.core import Hub
    from imkit.hub.members import Member


def amend_in_redis(backend: RedisBackend, member: Member, command: Amend) -> None:
    """``member`` deletes or edits a message."""
    hub, rid, text = backend.hub, command.id, new_text(command)
    if backend._refuse_unavailable(member, rid):
        return
    number = parse_msgid(command.msgid)
    assert number is not None, "the parser checks msgids"

    def done(reply: Any) -> None:
        if backend._failed(member, rid, reply, "the message may not have been changed"):
            return
        if not member.online:
            return
        if reply[0] == "ok":
            hub.send(member, Ok(rid, str(reply[1])))
        elif reply[1] == NO_SUCH_MESSAGE:
            hub.send(member, no_such_message(rid, command.msgid))
        else:
            hub.send(member, not_allowed(rid, text, reply[2] == "1"))

    # Where it must be: '' anywhere it is seen, '-' the lobby, else a room's key.
    only = ""
    if isinstance(command, DeleteMessage) and command.room is not None:
        key = room_key(command.room)
        only = "-" if key == hub.lobby_key else key
    if text is None:
        mode, value = "d", (command.reason if isinstance(command, DeleteMessage) else "") or ""
    else:
        mode, value = "e", text
    link = backend.link
    link.script("amend", link.node, member.id, str(number), mode, value, only, done=done)


def apply_amend(hub: Hub, event: dict[str, Any], room: str | None) -> None:
    """An ``amend`` event: told to the lobby's members here (``room`` None) or to those
    of the room here whose name is ``room``; the lobby's replay follows."""
    text, edited, msgid = event.get("text"), event["ms"] / 1000, event["msgid"]
    by = Author(event["by"], event.get("addr", "")) if event.get("by") else None
    reason = event.get("reason") or None
    if room is None:
        hub.store.amend_recent(int(msgid), text, edited)
        tell_amended(hub, None, hub.lobby, by, msgid, text, edited, reason)
    else:
        tell_amended(hub, event["room"], room, by, msgid, text, edited, reason)


def apply_forget(hub: Hub, numbers: list[int]) -> None:
    """``imkit history delete`` took ``numbers`` out of the lobby's history."""
    hub.store.forget(numbers)
    now = hub.wall_clock()
    for number in numbers:
        tell_amended(hub, None, hub.lobby, None, format_msgid(number), None, now)
