"""Message ids: unique in the chat, ordered as strings, never reused.

A msgid is 16 decimal digits: the number ``epoch_ms * 1000 + n``, zero-padded. The
millisecond the message was accepted leads, and ``n`` counts the messages of that
millisecond (a 1,001st message in one millisecond borrows the next one). So comparing two
msgids as strings gives the server's order, and the id says roughly when it was made.

:class:`MessageIds` hands them out. It never goes back: each id is greater than the last
one it gave, even when the wall clock steps backwards, and a store that outlives a
restart starts it from the greatest id it ever gave (kept apart from the messages, so that
deleting old ones cannot let an id come back). Sixteen digits last until the year 2286.

Clients treat msgids as opaque strings; only the server parses them.
"""

from __future__ import annotations

import re

MSGID_DIGITS = 16
_PER_MILLISECOND = 1000
_MSGID = re.compile(rf"[0-9]{{{MSGID_DIGITS}}}")


_FORMAT = f"%0{MSGID_DIGITS}d"


def format_msgid(number: int) -> str:
    return _FORMAT % number


def parse_msgid(text: str) -> int | None:
    """The number of a well-formed msgid, or None for anything else."""
    if not _MSGID.fullmatch(text):
        return None
    return int(text)


def msgid_floor(timestamp: float) -> int:
    """The smallest msgid number of a message accepted at ``timestamp`` (seconds)."""
    return int(timestamp * 1000) * _PER_MILLISECOND


class MessageIds:
    """Strictly increasing msgid numbers, led by the wall clock's milliseconds."""

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last  # the greatest number handed out (or stored) so far

    def next(self, timestamp: float) -> int:
        # msgid_floor and max() inlined: this runs once per chat message.
        number = int(timestamp * 1000) * _PER_MILLISECOND
        if number <= self.last:
            number = self.last + 1
        self.last = number
        return number
