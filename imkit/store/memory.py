"""``--db none``: history, accounts and waiting messages in memory only, lost at exit
(and the store of ``--port 0``)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import replace

from imkit.protocol import ChatMessage
from imkit.rules.accounts import DEFAULT_OFFLINE_DAYS, PAIR_SEPARATOR
from imkit.rules.names import name_key
from imkit.rules.rooms import room_key
from imkit.rules.search import Words, matches
from imkit.store.base import (
    DEFAULT_RETAIN_DAYS,
    MESSAGE_GONE,
    Answer,
    Deleted,
    Found,
    Page,
    Store,
    Stored,
    before_number,
    message_number,
)

# Public messages kept in memory: a bound, so that a long-running server does not grow
# without end (about 300 bytes each: 30 MB).
MEMORY_HISTORY = 100_000


class MemoryStore(Store):
    """Messages in a bounded list in memory; every operation completes at once.

    The lobby's and the rooms' messages share the bound, each with its room's key (None:
    the lobby's), as a file keeps them in one table."""

    def __init__(
        self,
        *,
        retain_days: float = DEFAULT_RETAIN_DAYS,
        offline_days: float = DEFAULT_OFFLINE_DAYS,
        clock: Callable[[], float],
        capacity: int = MEMORY_HISTORY,
    ) -> None:
        super().__init__(retain_days=retain_days, offline_days=offline_days, clock=clock)
        self._messages: collections.deque[tuple[str | None, ChatMessage]] = collections.deque(
            maxlen=capacity
        )
        # Private messages between accounts, with their conversation key: bounded apart
        # from the public ones, so that private chatter cannot push history out.
        self._private: collections.deque[tuple[str, ChatMessage]] = collections.deque(
            maxlen=capacity
        )

    def _append(
        self, message: ChatMessage, stored: Stored | None, conversation: str | None
    ) -> None:
        if message.to is None:
            room = message.room
            key = None if room is None or message.lobby else room_key(room)
            self._messages.append((key, message))
        elif conversation is not None:
            self._private.append((conversation, message))
        if stored is not None:
            stored(None)

    def delete_messages(
        self, ids: list[int] | None, sender_key: str | None, since: int, done: Deleted
    ) -> None:
        wanted = set(ids or ())

        def doomed(message: ChatMessage) -> bool:
            number = message_number(message)
            if ids is not None:
                return number in wanted
            return number >= since and name_key(message.sender) == sender_key

        deleted = [
            (message_number(m), None if k is None else m.room)
            for k, m in self._messages
            if doomed(m)
        ]
        gone = {number for number, _ in deleted}
        kept = [(k, m) for k, m in self._messages if message_number(m) not in gone]
        self._messages.clear()
        self._messages.extend(kept)
        self.forget(list(gone))
        done(deleted)

    def find_message(self, number: int, answer: Found) -> None:
        found = (m for _, m in reversed(self._messages) if message_number(m) == number)
        message = next(found, None)
        if message is not None and number < self.cutoff():
            message = None
        answer(None if message is None else self.as_read(message))

    def amend_message(self, number: int, text: str | None, edited: float, done: Stored) -> None:
        kept, found = [], False
        for key, message in self._messages:
            if message_number(message) == number:
                found = True
                if text is None:
                    continue  # deleted: its text gone with it
                message = replace(message, text=text, edited=edited)
            kept.append((key, message))
        self._messages.clear()
        self._messages.extend(kept)
        self.amend_recent(number, text, edited)
        done(None if found else MESSAGE_GONE)

    def history(
        self, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        cutoff = self.cutoff()
        while self._messages and message_number(self._messages[0][1]) < cutoff:
            self._messages.popleft()  # expired: forget it
        newest = (message for key, message in reversed(self._messages) if key == room)
        page = _page(newest, limit, before)
        answer(Page(tuple(self.as_read(m) for m in page.messages), page.more))

    def search(
        self, words: Words, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """A scan of the messages kept (at most MEMORY_HISTORY), newest first, on the
        event loop: the store for trials and tests (docs/integrations.md, "Search": what
        it costs). Only the messages of the page's range are tested."""
        cutoff, bound = self.cutoff(), before_number(before)
        found = (
            message
            for key, message in reversed(self._messages)
            if key == room
            and cutoff <= message_number(message) < bound
            and matches(message.text, words)
        )
        page = _page(found, limit, before)
        answer(Page(tuple(self.as_read(m) for m in page.messages), page.more))

    def conversation(self, pair: str, limit: int, before: str | None, answer: Answer) -> None:
        cutoff = self.cutoff()
        while self._private and message_number(self._private[0][1]) < cutoff:
            self._private.popleft()
        newest = (message for key, message in reversed(self._private) if key == pair)
        answer(_page(newest, limit, before))

    def delete_account(self, key: str, done: Stored) -> None:
        # A new account of the same name is someone else: it must not read these.
        kept = [(pair, m) for pair, m in self._private if key not in pair.split(PAIR_SEPARATOR)]
        self._private.clear()
        self._private.extend(kept)
        super().delete_account(key, done)


def _page(newest_first: Iterable[ChatMessage], limit: int, before: str | None) -> Page:
    """The ``limit`` newest of ``newest_first`` before msgid ``before``, oldest first."""
    bound = before_number(before)
    found: list[ChatMessage] = []
    for message in newest_first:  # from the newest: pages are near it
        if message_number(message) < bound:
            found.append(message)
            if len(found) > limit:
                break
    return Page(tuple(reversed(found[:limit])), len(found) > limit)
