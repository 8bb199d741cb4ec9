"""Opening the SQLite file: its folder, the lock, what kind of file it is, the schema.

The schema has a version (``PRAGMA user_version``) and imkit's mark (``PRAGMA
application_id``). A file is checked through a read-only connection before anything is
written to it, so that a file imkit must refuse (not a database, another program's
database, a newer imkit's, a damaged one) is left exactly as it was. Two servers cannot
share a file: the first holds an exclusive ``flock`` on it for as long as it runs.

A damaged file (its last pages zeroed, or cut short by a partial copy) can still answer a
few queries, and would then serve a fraction of its history as the whole of it; so before
serving, ``PRAGMA quick_check`` reads every page once through that read-only connection
(what that costs for a large file: docs/operations.md, "One file, one server"), and a
file shorter than its header says is refused even when only free pages were cut off.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from imkit.errors import ServeError

# "imkt": what `PRAGMA application_id` says in every imkit database.
APPLICATION_ID = 0x696D6B74

# A public message's scope token in the search index (migration 8), from a row of
# messages: the same as imkit.rules.search.scope_token.
_SCOPE = "CASE WHEN {row}.room_key IS NULL THEN 'l' ELSE 'r' || hex({row}.room_key) END"

# Each migration takes the schema from the version before it to its own number. A new
# version appends one; a released one never changes.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value
        )""",
        # last_id: the greatest msgid number ever given; ids never go back below it,
        # even when retention has deleted every message.
        "INSERT INTO meta (key, value) VALUES ('last_id', 0), ('checked_at', 0)",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,  -- the msgid as a number (imkit.rules.msgid)
            time REAL NOT NULL,      -- seconds since the epoch, when it was accepted
            sender TEXT NOT NULL,    -- the sender's name then
            addr TEXT NOT NULL,      -- the sender's address, as shown to everyone
            recipient TEXT,          -- NULL: a public message
            text TEXT NOT NULL
        )""",
    ),
    2: (
        # Bans (imkit ban): the target (an address or network as text) and the ban as
        # JSON (imkit.rules.bans.Ban.fields), with its absolute end time.
        """CREATE TABLE bans (
            target TEXT PRIMARY KEY,
            fields TEXT NOT NULL
        )""",
    ),
    # The key of the pseudonyms shown for addresses (--hide-addresses, imkit.rules.pseudonyms):
    # 32 random bytes, in hex, made once, so that pseudonyms are the same after a restart.
    3: ("INSERT INTO meta (key, value) VALUES ('address_secret', lower(hex(randomblob(32))))",),
    # Accounts (imkit account, imkit.rules.accounts).
    4: (
        # The sender's account when it was logged in (NULL: a guest, or an older row), so
        # that history tells a verified sender from a guest who took a free name.
        "ALTER TABLE messages ADD COLUMN account TEXT",
        # A private message between two accounts is kept under their conversation key
        # (imkit.rules.accounts.conversation_key); NULL for every other message. The index
        # serves a page of one conversation (newest first) as the id serves history.
        "ALTER TABLE messages ADD COLUMN conversation TEXT",
        """CREATE INDEX messages_conversation ON messages (conversation, id)
            WHERE conversation IS NOT NULL""",
        # The account (its name key) and the account as JSON (imkit.rules.accounts.Account.fields).
        """CREATE TABLE accounts (
            key TEXT PRIMARY KEY,
            fields TEXT NOT NULL
        )""",
        # Private messages waiting for an account that was offline, deleted once it has
        # logged in and been given them (or after --offline-days). Apart from messages:
        # a guest's message waits here without being history, and retention of history
        # must not delete a message before it was delivered.
        """CREATE TABLE mailbox (
            id INTEGER PRIMARY KEY,  -- the msgid as a number (imkit.rules.msgid)
            owner TEXT NOT NULL,     -- the key of the account it waits for
            time REAL NOT NULL,      -- as in messages
            sender TEXT NOT NULL,
            addr TEXT NOT NULL,
            account TEXT,            -- the sender's account, NULL: a guest
            recipient TEXT NOT NULL, -- the account's name
            text TEXT NOT NULL
        )""",
        "CREATE INDEX mailbox_owner ON mailbox (owner, id)",
    ),
    # Rooms (docs/rooms.md, imkit.rules.rooms).
    5: (
        # A room's message: its room's name as said and its key (imkit.rules.rooms.room_key);
        # NULL in both for the lobby's (whose name is --lobby, not kept) and every older
        # row. The index serves a page of one room as the conversation's does; the
        # lobby's pages still go through the id (recipient IS NULL AND room_key IS NULL).
        "ALTER TABLE messages ADD COLUMN room TEXT",
        "ALTER TABLE messages ADD COLUMN room_key TEXT",
        "CREATE INDEX messages_room ON messages (room_key, id) WHERE room_key IS NOT NULL",
        # Registered rooms (imkit room add): the room key and its settings as JSON
        # (imkit.rules.rooms.RoomState.fields).
        """CREATE TABLE rooms (
            key TEXT PRIMARY KEY,
            fields TEXT NOT NULL
        )""",
        # The rooms an account is in, put back at its next login: the account's name key,
        # the room's key and its name; the rowid keeps the order they were joined in.
        """CREATE TABLE account_rooms (
            account TEXT NOT NULL,
            room TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (account, room)
        )""",
    ),
    # Webhooks (docs/integrations.md, imkit.rules.hooks).
    6: (
        # 1: a webhook posted the message (its JSON event says "bot": true); NULL else.
        "ALTER TABLE messages ADD COLUMN bot INTEGER",
        # Hooks of both kinds: the hook's name key and the hook as JSON
        # (imkit.rules.hooks IncomingHook.fields, OutgoingHook.fields).
        """CREATE TABLE hooks (
            key TEXT PRIMARY KEY,
            fields TEXT NOT NULL
        )""",
    ),
    # Editing a message (docs/integrations.md, "Delete and edit"): when its author last
    # changed its text (NULL: never).
    7: ("ALTER TABLE messages ADD COLUMN edited REAL",),
    # Search (docs/integrations.md, "Search"): an FTS5 index of public messages' text.
    # Its content is the view messages_public (so FTS5's 'rebuild' can read it), whose
    # ``scope`` is one token for where a message was said (imkit.rules.search.scope_token:
    # 'l' the lobby, 'r' || hex(room_key) a room), so that a room's search intersects
    # two lists of the index rather than filtering rows. Private messages are not in it.
    # The index follows the messages table by these TRIGGERS, whatever writes it: an
    # insert, retention, `imkit history delete`, and any UPDATE of a message's text (an
    # edit, a deletion that blanks it) — no code has to call anything.
    8: (
        f"""CREATE VIEW messages_public AS SELECT id, text, {_SCOPE.format(row="messages")}
            AS scope FROM messages WHERE recipient IS NULL""",
        """CREATE VIRTUAL TABLE messages_fts USING fts5(text, scope,
            content='messages_public', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2')""",
        "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",  # an existing file's
        f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
            WHEN new.recipient IS NULL BEGIN
            INSERT INTO messages_fts (rowid, text, scope)
            VALUES (new.id, new.text, {_SCOPE.format(row="new")}); END""",
        f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
            WHEN old.recipient IS NULL BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text, scope)
            VALUES ('delete', old.id, old.text, {_SCOPE.format(row="old")}); END""",
        f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, recipient, room_key
            ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text, scope)
            SELECT 'delete', old.id, old.text, {_SCOPE.format(row="old")}
            WHERE old.recipient IS NULL;
            INSERT INTO messages_fts (rowid, text, scope)
            SELECT new.id, new.text, {_SCOPE.format(row="new")} WHERE new.recipient IS NULL;
            END""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)

# A reader (an operator's sqlite3 shell) may hold the file for a moment.
BUSY_TIMEOUT_MS = 5000
# Problems PRAGMA quick_check reports in the one-line error; the rest are counted.
SHOWN_PROBLEMS = 1
# Result codes (the low byte of sqlite_errorcode) that say the file cannot be reached, not
# what is in it: SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN.
_ACCESS_ERRORS = frozenset({3, 8, 10, 14})
# The file's contents are damaged (SQLITE_CORRUPT).
_CORRUPT = 11
# Where the recovery steps are written down, for the error that refuses a damaged file.
RECOVERY = 'docs/operations.md, "When the file is damaged"'


def open_database(path: Path, *, fsync: bool) -> tuple[sqlite3.Connection, int]:
    """The connection to imkit's database at ``path`` (created, or migrated, when it
    needs to be) and the descriptor that holds its lock. :class:`ServeError` when the
    file cannot be used; a file that is refused is not modified."""
    _make_folder(path.parent)
    lock = _lock(path)
    try:
        _check_kind(path)
        connection = connect(path, fsync=fsync)
    except BaseException:
        os.close(lock)
        raise
    return connection, lock


def _make_folder(folder: Path) -> None:
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=0o700, parents=True)
    except OSError as error:
        raise ServeError(f"cannot create the folder {folder}: {error.strerror}") from None


def _lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except IsADirectoryError:
        raise ServeError(f"cannot use {path} as the database: it is a folder") from None
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # locked, then refused as read-only
        except OSError as error:
            raise ServeError(f"cannot open the database {path}: {error.strerror}") from None
    except OSError as error:
        raise ServeError(f"cannot open the database {path}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ServeError(
            f"the database {path} is in use by another imkit server "
            "(give this one its own with --db PATH, or --db none)"
        ) from None
    return fd


def _check_kind(path: Path) -> None:
    """Refuse a file that is not an imkit database of a version this imkit knows, or is
    damaged, without writing to it (a read-only connection cannot even checkpoint its
    journal)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as probe:
            application_id = probe.execute("PRAGMA application_id").fetchone()[0]
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            tables = probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if application_id == 0 and version == 0 and tables == 0:
                return  # new or empty: imkit makes it its own
            problems = []
            if application_id == APPLICATION_ID:
                problems = _cut_short(path) + _quick_check(probe)
    except sqlite3.DatabaseError as error:
        raise _unreadable(path, error) from None
    if application_id != APPLICATION_ID:
        raise ServeError(
            f"{path} is not an imkit database (another program's); it was left untouched"
        )
    if version > SCHEMA_VERSION:
        raise ServeError(
            f"{path} was written by a newer imkit (schema {version}; this imkit knows up to "
            f"{SCHEMA_VERSION}); it was left untouched: upgrade imkit or use another --db"
        )
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        hidden = len(problems) - SHOWN_PROBLEMS
        more = f" and {hidden} more" if hidden > 0 else ""
        raise ServeError(
            f"{path} is damaged ({shown}{more}); it was left untouched: recover what it "
            f"holds into a new file ({RECOVERY}) or use another --db"
        )


def _cut_short(path: Path) -> list[str]:
    """A file shorter than its header says it is (a partial copy or restore): what
    quick_check cannot see when only free pages were cut off (the search index's merges
    leave some at the end). The header's page count is trusted only when valid (its
    version-valid-for number equals its change counter), as SQLite trusts it."""
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100:
        return []  # SQLite's own reading refuses it
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] != header[92:96] or not pages:
        return []
    size = path.stat().st_size
    if size >= pages * page_size:
        return []
    return [f"cut short: {size} bytes where its header says {pages} pages of {page_size}"]


def _quick_check(probe: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA quick_check`` finds wrong (every page read once); [] when nothing."""
    found = [row[0] for row in probe.execute("PRAGMA quick_check")]
    if found == ["ok"]:
        return []
    # It reports each problem on a line of its own, after a title naming the schema.
    lines = (" ".join(line.split()) for each in found for line in each.splitlines())
    return [line for line in lines if line and not line.startswith("***")]


def _unreadable(path: Path, error: sqlite3.DatabaseError) -> ServeError:
    """Why the read-only look at ``path`` failed, said as what is really wrong."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in _ACCESS_ERRORS:
        return _not_writable(path) or ServeError(
            f"cannot open the database {path}: {error}; it was left untouched"
        )
    if code == _CORRUPT:
        return ServeError(
            f"{path} is damaged ({error}); it was left untouched: recover what it holds "
            f"into a new file ({RECOVERY}) or use another --db"
        )
    return ServeError(f"{path} is not an imkit database ({error}); it was left untouched")


def _not_writable(path: Path) -> ServeError | None:
    """Which of the folder or the file cannot be written, when one cannot: SQLite makes
    PATH-wal and PATH-shm beside the file, even to read it, and reports either as a
    read-only database."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return ServeError(
            f"cannot use the database {path}: its folder {folder} cannot be written (SQLite "
            f"keeps {path.name}-wal and {path.name}-shm there); it was left untouched"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        return ServeError(
            f"cannot use the database {path}: the file cannot be written; it was left untouched"
        )
    return None


def connect(path: Path, *, fsync: bool) -> sqlite3.Connection:
    """The writer's connection to a file already checked (made again by :mod:`.files`
    when a lost -wal has been folded back)."""
    # Autocommit mode: the writer says BEGIN and COMMIT itself, one transaction a batch.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # WAL: readers never block the writer, a commit is one append to the log.
        # synchronous=NORMAL syncs the log at checkpoints only: a commit survives the
        # process being killed, not a power loss; --fsync (FULL) syncs every commit.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # A deleted message's text (or an edited one's old text) is overwritten in the
        # file, not left in a free page (docs/integrations.md, "Delete and edit").
        connection.execute("PRAGMA secure_delete=ON")
        _require_fts5(connection, path)
        _migrate(connection)
        # Prove now that the file takes writes: better to refuse to start than to start
        # refusing every message.
        connection.execute("UPDATE meta SET value = strftime('%s') WHERE key = 'checked_at'")
    except ServeError:
        connection.close()
        raise
    except sqlite3.Error as error:
        connection.close()
        raise _not_writable(path) or ServeError(
            f"cannot write the database {path}: {error}"
        ) from None
    return connection


def _require_fts5(connection: sqlite3.Connection, path: Path) -> None:
    """Refuse to serve when this Python's SQLite lacks FTS5: the search index (migration
    8) and its triggers on every message need it. Asked of the library, not assumed: a
    distribution may build sqlite3 without it."""
    options = {row[0] for row in connection.execute("PRAGMA compile_options")}
    if "ENABLE_FTS5" not in options:
        raise ServeError(
            f"cannot use the database {path}: this Python's SQLite {sqlite3.sqlite_version} "
            "was built without FTS5, which imkit's store needs for search; use a Python "
            "whose sqlite3 has it, or --db none"
        )


def _migrate(connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for target in range(version + 1, SCHEMA_VERSION + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target]:
                connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={target}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
