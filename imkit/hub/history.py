"""``history``: a page of the lobby's messages, of a room's (for its members), or of a
private conversation between two accounts (for its two parties); read from the store,
answered when it answers. With a ``query`` (a search, docs/integrations.md), a page of the
lobby's or a room's messages that have its words, by the same rule of who may read them
(the parser refuses a search of a conversation)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from imkit.protocol import (
    LOGIN_REQUIRED,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    UNAVAILABLE,
    Error,
    History,
    HistoryPage,
    RequestId,
)
from imkit.rules.accounts import Account, conversation_key
from imkit.rules.names import name_key
from imkit.rules.rooms import room_key
from imkit.rules.search import query_words
from imkit.store import Page

if TYPE_CHECKING:
    from imkit.hub.core import Hub
    from imkit.hub.members import Member


def history(hub: Hub, member: Member, command: History) -> None:
    """The hub's command table's entry for ``history``."""
    answer = partial(_page, hub, member, command.id)
    if command.with_ is not None:
        _conversation(hub, member, command, answer)
        return
    key = None if command.room is None else room_key(command.room)
    read = hub.store.history
    if command.query is not None:  # a search: the same pages, the same readers
        read = partial(hub.store.search, query_words(command.query))
    if key is None or key == hub.lobby_key:
        read(command.limit, command.before, answer)
    elif key in member.rooms:
        read(command.limit, command.before, answer, room=key)
    else:
        message = f"you are not in {command.room}: only its members read its history"
        hub.send(member, Error(command.id, NOT_IN_ROOM, message, command.room))


def _page(hub: Hub, member: Member, rid: RequestId, page: Page | str) -> None:
    if not member.online:
        return
    if isinstance(page, str):
        hub.send(member, Error(rid, UNAVAILABLE, page))
    else:
        hub.reply(member, HistoryPage(rid, page.messages, page.more, page.before))


def _conversation(
    hub: Hub, member: Member, command: History, answer: Callable[[Page | str], None]
) -> None:
    """A page of ``member``'s private conversation with the account ``command.with_``:
    only its two parties may read it."""
    if member.account is None:
        message = "log in to read your private conversations"
        hub.send(member, Error(command.id, LOGIN_REQUIRED, message))
        return
    mine, rid, limit, before = member.account, command.id, command.limit, command.before

    def found(other: Account | None | str) -> None:
        if not member.online:
            return
        if isinstance(other, str):
            hub.send(member, Error(rid, UNAVAILABLE, other))
        elif other is None:
            message = f"no account named {command.with_!r}"
            hub.send(member, Error(rid, NO_SUCH_USER, message, command.with_))
        else:
            pair = conversation_key(name_key(mine), other.key)
            hub.store.conversation(pair, limit, before, answer)

    hub.lookup_account(command.with_ or "", found)
