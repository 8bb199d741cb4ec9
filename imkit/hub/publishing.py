"""One server's public messages, the lobby's and a room's: :class:`LocalPublishing`, the
one way they are refused, numbered, delivered, stored and acknowledged (mixed into
:class:`~imkit.hub.local_rooms.LocalRooms`, and so into LocalBackend)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from imkit.hub.members import Member
from imkit.hub.rooms import fan_out
from imkit.protocol import UNAVAILABLE, ChatMessage, Error, Mode, Ok, RequestId
from imkit.store import Store

if TYPE_CHECKING:
    from imkit.hub.core import Hub


class LocalPublishing:
    """A public message on one server; see the module docstring."""

    hub: Hub
    # Told every message published here (Backend.on_published: outgoing webhooks).
    on_published: Callable[[ChatMessage], None] | None = None

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
