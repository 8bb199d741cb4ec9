"""What the event loop hands the SQLite store's writer thread, and the SQL it runs: a
message as a row, a read of history (or a search, through the FTS5 index of schema 8,
which triggers keep in step with the rows: nothing here writes it), a change in a
transaction of its own, a barrier.

A public message's row has its room's name and key (``room``, ``room_key``) when it was
said in a room, and NULL in both when it was said in the lobby (and in every row written
before rooms): the lobby's name is the server's (``--lobby``), not the file's, so a row
read back is given it then (:func:`to_message`)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

from imkit.protocol import ChatMessage
from imkit.rules.msgid import format_msgid
from imkit.rules.rooms import room_key
from imkit.rules.search import Words, fts_query, scope_token
from imkit.store.base import Answer, Page, Stored

# The columns of a waiting message (mailbox), and of a message in history (messages).
MAIL_COLUMNS = "id, time, sender, addr, recipient, text, account"
COLUMNS = f"{MAIL_COLUMNS}, room, bot, edited"
INSERT = (
    f"INSERT INTO messages ({MAIL_COLUMNS}, conversation, room, room_key, bot) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A message as read (MAIL_COLUMNS, and COLUMNS: its room, whether a webhook posted it and
# when it was edited), and as written (and its conversation, its room and its key, bot).
Row = tuple[int, float, str, str, str | None, str, str | None]
HistoryRow = tuple[
    int, float, str, str, str | None, str, str | None, str | None, int | None, float | None
]
NewRow = tuple[
    int,
    float,
    str,
    str,
    str | None,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
]
# The one way a stored message's text changes (docs/integrations.md, "Delete and
# edit"), so that anything kept beside it (a search index) follows by trigger: a delete
# (an author's, an operator's, imkit history delete) removes the row, an edit updates
# its text and its edit time. Public messages only.
DELETE_MESSAGE = "DELETE FROM messages WHERE id = ? AND recipient IS NULL"
EDIT_MESSAGE = "UPDATE messages SET text = ?, edited = ? WHERE id = ? AND recipient IS NULL"
SAVE_BAN = "INSERT OR REPLACE INTO bans (target, fields) VALUES (?, ?)"
SAVE_ACCOUNT = "INSERT OR REPLACE INTO accounts (key, fields) VALUES (?, ?)"
# Only while the account exists: a message for an account deleted meanwhile (its delete
# was queued first) is not kept for whoever registers the name next.
ADD_MAIL = (
    f"INSERT INTO mailbox (owner, {MAIL_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM accounts WHERE key = ?)"
)
SAVE_ROOM = "INSERT OR REPLACE INTO rooms (key, fields) VALUES (?, ?)"
# An account's room, remembered once (a second join keeps its place, the name is the
# newest spelling), and only while the account exists (as ADD_MAIL).
REMEMBER_ROOM = (
    "INSERT INTO account_rooms (account, room, name) SELECT ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM accounts WHERE key = ?) "
    "ON CONFLICT (account, room) DO UPDATE SET name = excluded.name"
)


class Read:
    """A page of history (``conversation`` None): the lobby's (``room`` None) or a
    room's (``room``: its key); or a page of one private conversation. ``lobby``: the
    lobby's name, given to the lobby's messages read."""

    __slots__ = ("limit", "bound", "cutoff", "answer", "conversation", "room", "lobby", "words")

    def __init__(
        self,
        limit: int,
        bound: int,
        cutoff: int,
        answer: Answer,
        conversation: str | None,
        *,
        room: str | None = None,
        lobby: str,
        words: Words | None = None,
    ) -> None:
        self.limit, self.bound, self.cutoff, self.answer = limit, bound, cutoff, answer
        self.conversation, self.room, self.lobby = conversation, room, lobby
        self.words = words  # a search (the lobby's or the room's messages with them)


class Barrier:
    __slots__ = ("reached",)

    def __init__(self, reached: Callable[[], None]) -> None:
        self.reached = reached


class Change:
    """Work on the connection in a transaction of its own (bans, accounts, mail).
    ``forgets``: it deletes messages or rewrites their text, whose words the search
    index then still holds in its older segments until it is compacted
    (:meth:`~imkit.store.writer.SqliteWriter._compact`)."""

    __slots__ = ("work", "done", "forgets")

    def __init__(
        self, work: Callable[[sqlite3.Connection], object], done: Stored, forgets: bool = False
    ) -> None:
        self.work, self.done, self.forgets = work, done, forgets


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


def to_new_row(message: ChatMessage, conversation: str | None) -> NewRow:
    """``message`` as a row of messages: a room's message with its room and key."""
    room = message.room if message.to is None and not message.lobby else None
    bot = 1 if message.bot else None  # NULL for people's messages, as in older rows
    return (*to_row(message), conversation, room, None if room is None else _key(room), bot)


@functools.lru_cache(maxsize=1024)
def _key(room: str) -> str:
    """room_key, once a room rather than once a message (NFKC and folding cost)."""
    return room_key(room)


def to_message(row: Row | HistoryRow, lobby: str | None = None) -> ChatMessage:
    """The message a row holds. A row of history (:data:`HistoryRow`) that is public is
    the lobby's (``lobby``, its name) when it has no room, else its room's."""
    number, timestamp, sender, addr, recipient, text, account, *rest = row
    msgid = format_msgid(number)
    if recipient is not None or lobby is None:
        return ChatMessage(sender, addr, recipient, text, timestamp, msgid, account)
    room = rest[0] if rest else None
    assert room is None or isinstance(room, str)
    bot = bool(rest[1]) if len(rest) > 1 else False
    edited: float | None = rest[2] if len(rest) > 2 else None  # type: ignore[assignment]
    if room is None:
        return ChatMessage(
            sender, addr, None, text, timestamp, msgid, account, room=lobby, lobby=True,
            bot=bot, edited=edited,
        )  # fmt: skip
    return ChatMessage(
        sender, addr, None, text, timestamp, msgid, account, room=room, bot=bot, edited=edited
    )


def read_page(connection: sqlite3.Connection, read: Read) -> Page:
    """The page ``read`` asks for (sqlite3.Error when it cannot be read)."""
    if read.words is not None:
        return search_page(connection, read)
    parameters: tuple[str, ...] = ()
    if read.conversation is not None:
        where, parameters = "conversation = ?", (read.conversation,)
    elif read.room is not None:
        # Through the index messages_room (only rooms' rows are in it).
        where, parameters = "room_key = ?", (read.room,)
    else:
        # Through the primary key, newest first, rooms' rows passed over.
        where = "recipient IS NULL AND room_key IS NULL"
    rows = connection.execute(
        f"SELECT {COLUMNS} FROM messages WHERE {where} AND id < ? AND id >= ? "
        "ORDER BY id DESC LIMIT ?",
        (*parameters, read.bound, read.cutoff, read.limit + 1),
    ).fetchall()
    more = len(rows) > read.limit
    messages = (to_message(row, read.lobby) for row in reversed(rows[: read.limit]))
    return Page(tuple(messages), more)


# A search, in two steps. First the index's newest matches of the words alone (FTS5
# walks its rowids down and stops at the LIMIT), their rows filtered by room through the
# primary key: enough when the room (the lobby, often) holds many of them. When that
# found too few and the index has more, the rest through the room's scope token too
# (imkit.rules.search.fts_query): FTS5 intersects the lists, so a sparse room does not
# cost a walk through every match elsewhere. Measured (docs/performance.md, "Search and
# ingest"): the scope alone is slow on the lobby's huge list (20 ms for two words), the
# words alone slow on a small room (7 ms for a common word); each step is fast where it
# is used.
PROBE = (
    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? AND rowid < ? AND rowid >= ? "
    "ORDER BY rowid DESC LIMIT ?"
)
SEARCH = (
    f"SELECT {', '.join('m.' + c for c in COLUMNS.split(', '))} FROM messages_fts "
    "JOIN messages AS m ON m.id = messages_fts.rowid "
    "WHERE messages_fts MATCH ? AND messages_fts.rowid < ? AND messages_fts.rowid >= ? "
    "ORDER BY messages_fts.rowid DESC LIMIT ?"
)
# How many matches of the words the first step reads, for each message a page wants.
PROBE_FACTOR = 2


def search_page(connection: sqlite3.Connection, read: Read) -> Page:
    """A page of the public messages of the lobby (``read.room`` None) or of a room that
    have every word of ``read.words``, through the index messages_fts (schema 8)."""
    assert read.words is not None
    want = read.limit + 1
    probe = max(PROBE_FACTOR * want, 100)
    words = fts_query(read.words)
    ids = [row[0] for row in connection.execute(PROBE, (words, read.bound, read.cutoff, probe))]
    rows: list[HistoryRow] = []
    if ids:
        marks = ", ".join("?" * len(ids))
        rows = connection.execute(
            f"SELECT {COLUMNS} FROM messages WHERE id IN ({marks}) AND recipient IS NULL "
            "AND room_key IS ? ORDER BY id DESC LIMIT ?",
            (*ids, read.room, want),
        ).fetchall()
    if len(rows) < want and len(ids) == probe:  # more matches, older than those read
        scoped = fts_query(read.words, scope_token(read.room))
        rest = (scoped, ids[-1], read.cutoff, want - len(rows))
        rows += connection.execute(SEARCH, rest).fetchall()
    more = len(rows) > read.limit
    messages = (to_message(row, read.lobby) for row in reversed(rows[: read.limit]))
    return Page(tuple(messages), more)


def purge_chunk(connection: sqlite3.Connection, table: str, cutoff: int, chunk: int) -> int:
    """Delete the ``chunk`` oldest rows of ``table`` below msgid ``cutoff``, in a
    transaction of their own; how many went (sqlite3.Error when they could not)."""
    cursor = connection.execute(
        f"DELETE FROM {table} WHERE id IN "
        f"(SELECT id FROM {table} WHERE id < ? ORDER BY id LIMIT ?)",
        (cutoff, chunk),
    )
    return cursor.rowcount
