"""One server's public messages, the lobby's and a room's: :class:`LocalPublishing`, the
one way they are refused, numbered, delivered, stored and acknowledged (mixed into
:class:`~imkit.hub.local_rooms.LocalRooms`, and so into LocalBackend); a webhook's
message (:meth:`LocalPublishing.hook_publish`) goes the same way, with no member."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from imkit.hub.members import Member
from imkit.hub.rooms import fan_out
from imkit.protocol import UNAVAILABLE, ChatMessage, Error, Mode, Ok, RequestId
from imkit.rules.hooks import HOOK_ADDR, NO_ROOM, NOT_TAKEN, POSTED, PostOutcome
from imkit.rules.names import name_key
from imkit.rules.rooms import RoomState
from imkit.store import Store

if TYPE_CHECKING:
    from imkit.hub.core import Hub


class LocalPublishing:
    """A public message on one server; see the module docstring."""

    hub: Hub
    # Told every message published here (Backend.on_published: outgoing webhooks).
    on_published: Callable[[ChatMessage], None] | None = None

    if TYPE_CHECKING:

        def _state(self, key: str) -> RoomState | None: ...

    def hook_publish(
        self,
        room: str,
        name: str,
        username: str | None,
        text: str,
        done: Callable[[PostOutcome], None],
    ) -> None:
        """A webhook's message to the room whose key is ``room``, as ``name`` (or as
        ``username`` when nobody online holds it and no account has it), marked as a
        bot: refused while the store cannot write, numbered, delivered to the room's
        members, stored; ``done`` is told once it is stored (or why not). A hook is no
        member: its room's +n and +m do not apply (the administrator made it)."""
        hub = self.hub
        store: Store = hub.store
        if store.problem is not None:
            hub.stats.refused_unavailable += 1
            done(PostOutcome(NOT_TAKEN, f"the message was not posted: {store.problem}"))
            return
        state = self._state(room)
        if state is None:
            done(PostOutcome(NO_ROOM, f"the hook's room {room} no longer exists"))
            return
        if username is not None and (
            hub.find(username) is not None or name_key(username) in store.accounts
        ):
            username = None  # never a name someone holds, nor an account's
        sender = username or name
        hub.stats.public_received += 1
        hub.stats.room_messages += 1
        now = hub.wall_clock()
        msgid = store.new_msgid(now)
        event = ChatMessage(sender, HOOK_ADDR, None, text, now, msgid, None, state.name, bot=True)
        members = hub.rooms[room].members.values() if room in hub.rooms else ()
        hub.stats.messages_delivered += fan_out(hub, members, event)
        if hub.unflushed_since is None:
            hub.unflushed_since = time.monotonic()

        def stored(problem: str | None) -> None:
            if problem is None:
                done(PostOutcome(POSTED, msgid, sender))
            else:  # delivered already: it must not be posted again
                done(PostOutcome(NOT_TAKEN, f"the message was delivered but not stored: {problem}"))

        store.append(event, stored)

    def _publish(
        self,
        member: Member,
        rid: RequestId,
        text: str,
        notice: bool,
        room: str,
        recipients: Iterable[Member] | None,
    ) -> bool:
        """A public message, the lobby's (``recipients`` None: the lobby) or a room's:
        delivered at once, stored after; a JSON sender's ok waits for the store. False
        when the store cannot write: refused before anyone sees it, nothing to undo."""
        hub = self.hub
        store: Store = hub.store
        if store.problem is not None:
            hub.stats.refused_unavailable += 1
            message = f"the message was not sent: {store.problem}"
            hub.send(member, Error(rid, UNAVAILABLE, message))
            return False
        hub.stats.public_received += 1
        now = hub.wall_clock()
        msgid = store.new_msgid(now)
        event = ChatMessage(
            member.name,
            member.shown_addr,
            None,
            text,
            now,
            msgid,
            member.account,
            room,
            lobby=recipients is None,
            notice=notice,
        )
        if recipients is None:
            hub.stats.messages_delivered += hub.broadcast(event)
        else:
            hub.stats.messages_delivered += fan_out(hub, recipients, event)
        if hub.unflushed_since is None:
            hub.unflushed_since = member.last_active
        if member.wire.mode is Mode.JSON:
            store.append(event, partial(self._stored, member, rid, msgid))
        else:
            store.append(event)  # text mode has no ack: stored in the same batches
        if self.on_published is not None:
            self.on_published(event)
        return True

    def _stored(self, member: Member, rid: RequestId, msgid: str, problem: str | None) -> None:
        """A message's outcome in the store, told to its JSON sender (LocalBackend's
        lobby messages too)."""
        if not member.online:
            return  # gone before its message was stored: nobody to tell
        if problem is None:
            self.hub.send(member, Ok(rid, msgid))
        else:
            # It reached everyone online already: it must not be sent again.
            message = f"the message was delivered but not stored: {problem}"
            self.hub.send(member, Error(rid, UNAVAILABLE, message, delivered=True))
