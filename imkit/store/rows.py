"""What the event loop hands the SQLite store's writer thread, and the SQL it runs: a
message as a row, a read of history, a change in a transaction of its own, a barrier."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from imkit.protocol import ChatMessage
from imkit.rules.msgid import format_msgid
from imkit.store.base import Answer, Page, Stored

COLUMNS = "id, time, sender, addr, recipient, text, account"
INSERT = f"INSERT INTO messages ({COLUMNS}, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# A message as read (COLUMNS), and as written (and its conversation).
Row = tuple[int, float, str, str, str | None, str, str | None]
NewRow = tuple[int, float, str, str, str | None, str, str | None, str | None]
SAVE_BAN = "INSERT OR REPLACE INTO bans (target, fields) VALUES (?, ?)"
SAVE_ACCOUNT = "INSERT OR REPLACE INTO accounts (key, fields) VALUES (?, ?)"
# Only while the account exists: a message for an account deleted meanwhile (its delete
# was queued first) is not kept for whoever registers the name next.
ADD_MAIL = (
    f"INSERT INTO mailbox (owner, {COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM accounts WHERE key = ?)"
)


class Read:
    """A page of history (``conversation`` None) or of one private conversation."""

    __slots__ = ("limit", "bound", "cutoff", "answer", "conversation")

    def __init__(
        self, limit: int, bound: int, cutoff: int, answer: Answer, conversation: str | None
    ) -> None:
        self.limit, self.bound, self.cutoff, self.answer = limit, bound, cutoff, answer
        self.conversation = conversation


class Barrier:
    __slots__ = ("reached",)

    def __init__(self, reached: Callable[[], None]) -> None:
        self.reached = reached


class Change:
    """Work on the connection in a transaction of its own (bans, accounts, mail)."""

    __slots__ = ("work", "done")

    def __init__(self, work: Callable[[sqlite3.Connection], object], done: Stored) -> None:
        self.work, self.done = work, done


def to_row(message: ChatMessage) -> Row:
    return (
        int(message.msgid or 0),
        message.time,
        message.sender,
        message.addr,
        message.to,
        message.text,
        message.account,
    )


def to_message(row: Row) -> ChatMessage:
    number, timestamp, sender, addr, recipient, text, account = row
    return ChatMessage(sender, addr, recipient, text, timestamp, format_msgid(number), account)


def read_page(connection: sqlite3.Connection, read: Read) -> Page:
    """The page ``read`` asks for (sqlite3.Error when it cannot be read)."""
    parameters: tuple[str, ...] = ()
    if read.conversation is None:
        where = "recipient IS NULL"
    else:
        where, parameters = "conversation = ?", (read.conversation,)
    rows = connection.execute(
        f"SELECT {COLUMNS} FROM messages WHERE {where} AND id < ? AND id >= ? "
        "ORDER BY id DESC LIMIT ?",
        (*parameters, read.bound, read.cutoff, read.limit + 1),
    ).fetchall()
    more = len(rows) > read.limit
    return Page(tuple(to_message(row) for row in reversed(rows[: read.limit])), more)


def purge_chunk(connection: sqlite3.Connection, table: str, cutoff: int, chunk: int) -> int:
    """Delete the ``chunk`` oldest rows of ``table`` below msgid ``cutoff``, in a
    transaction of their own; how many went (sqlite3.Error when they could not)."""
    cursor = connection.execute(
        f"DELETE FROM {table} WHERE id IN "
        f"(SELECT id FROM {table} WHERE id < ? ORDER BY id LIMIT ?)",
        (cutoff, chunk),
    )
    return cursor.rowcount
