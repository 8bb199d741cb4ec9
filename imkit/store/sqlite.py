"""The default store: one SQLite file, written by one thread, one transaction a batch.

The event loop never waits for the disk. :meth:`SqliteStore.append` puts the message on
a queue and returns; the writer thread takes everything queued at once, inserts it with
one ``executemany`` in one transaction, commits, and hands the outcome back to the loop
with one ``call_soon_threadsafe`` for the whole batch (group commit: the busier the chat,
the bigger the batches). A message someone waits for (a JSON sender's ``ok``) is handed
over at once; messages nobody waits for (text mode) are handed over together, at most
:data:`HANDOVER_DELAY` after the first, so that a busy text chat does not wake the
writer once a message. History requests go through the same queue, after whatever was
appended before them, so a request sees every message appended before it.

The writer thread, what it does when a commit fails or its files change under it, and
retention in the background are :mod:`.writer`'s (the base class of SqliteStore); this
module is what the loop calls.

Accounts and the private messages waiting for them, registered rooms and the rooms of
each account are read into memory when the file is opened (the hub decides from memory
at once) and written through the same queue, one transaction a change; memory follows
what was stored (see each method).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from imkit.protocol import HISTORY_MAX, ChatMessage
from imkit.rules.accounts import ACCOUNT_GONE, DEFAULT_OFFLINE_DAYS, Account
from imkit.rules.hooks import Hook, hook_from_fields
from imkit.rules.names import name_key
from imkit.rules.search import Words
from imkit.store.base import (
    DEFAULT_RETAIN_DAYS,
    MESSAGE_GONE,
    Answer,
    Deleted,
    Found,
    Stored,
    before_number,
    message_number,
)
from imkit.store.rows import (
    ADD_MAIL,
    COLUMNS,
    DELETE_MESSAGE,
    EDIT_MESSAGE,
    MAIL_COLUMNS,
    REMEMBER_ROOM,
    SAVE_ACCOUNT,
    SAVE_BAN,
    SAVE_ROOM,
    Barrier,
    Change,
    NewRow,
    Read,
    to_message,
    to_new_row,
    to_row,
)
from imkit.store.schema import open_database
from imkit.store.writer import CLOSE, SqliteWriter

log = logging.getLogger("imkit.store")

# Retention runs this often (a chunk per transaction: .writer).
PURGE_INTERVAL = 60.0
# How long closing waits for the writer to store what is queued.
CLOSE_TIMEOUT = 10.0
# Messages nobody waits for (text mode has no ack) are handed to the writer together,
# at most this long after the first of them, or as soon as a message that someone waits
# for (a JSON sender's ok), a history request or a flush comes. Waking the writer thread
# once a message costs the event loop more than writing does: every wake-up is a fight
# for the GIL (measured: broadcast throughput 0.81x with the store, against --db none).
HANDOVER_DELAY = 0.02
HANDOVER_ROWS = 1000


class SqliteStore(SqliteWriter):
    """Messages in an SQLite file; see the module docstring. This class is what the loop
    calls; what the writer thread runs is its base, :class:`~imkit.store.writer.SqliteWriter`."""

    def __init__(
        self,
        path: Path,
        *,
        retain_days: float = DEFAULT_RETAIN_DAYS,
        offline_days: float = DEFAULT_OFFLINE_DAYS,
        clock: Callable[[], float],
        fsync: bool = False,
        purge_interval: float = PURGE_INTERVAL,
    ) -> None:
        super().__init__(
            path,
            retain_days=retain_days,
            offline_days=offline_days,
            clock=clock,
            fsync=fsync,
            purge_interval=purge_interval,
        )
        self._thread: threading.Thread | None = None
        # Rows of messages nobody waits for, not yet handed to the writer (loop only).
        self._unsent: list[NewRow] = []
        self._handover: asyncio.TimerHandle | None = None
        # Account key -> the newest delivered message to delete from its mailbox, until
        # the delete is handed to the writer at the end of the loop's round (_drop_mail).
        self._mail_bounds: dict[str, int] = {}

    @property
    def description(self) -> str:
        return f"SQLite {self.path}"

    # ------------------------------------------------------------ on the loop

    def open(self) -> None:
        """Open (create, migrate) the file and take its lock; ServeError when it cannot."""
        connection, self._lock_fd = open_database(self.path, fsync=self.fsync)
        self._connection = connection
        self._files.remember()
        last_id = max(
            int(connection.execute("SELECT value FROM meta WHERE key = 'last_id'").fetchone()[0]),
            connection.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0],
            # A guest's message to an offline account is kept only here.
            connection.execute("SELECT coalesce(max(id), 0) FROM mailbox").fetchone()[0],
        )
        secret = connection.execute(
            "SELECT value FROM meta WHERE key = 'address_secret'"
        ).fetchone()[0]
        self._address_secret = bytes.fromhex(secret)
        rows = connection.execute(  # the lobby's, for replay
            f"SELECT {COLUMNS} FROM messages WHERE recipient IS NULL AND room_key IS NULL "
            "AND id >= ? ORDER BY id DESC LIMIT ?",
            (self.cutoff(), HISTORY_MAX),
        ).fetchall()
        self._remember(last_id, [to_message(row, self.lobby) for row in reversed(rows)])
        self.bans = [json.loads(raw) for (raw,) in connection.execute("SELECT fields FROM bans")]
        for key, raw in connection.execute("SELECT key, fields FROM accounts"):
            self.accounts[key] = Account.from_fields(json.loads(raw))
        for key, raw in connection.execute("SELECT key, fields FROM rooms"):
            self.rooms[key] = json.loads(raw)
        for key, raw in connection.execute("SELECT key, fields FROM hooks"):
            self._hooks[key] = hook_from_fields(json.loads(raw))
        joined = "SELECT account, room, name FROM account_rooms ORDER BY rowid"
        for account, room, name in connection.execute(joined):
            self.account_rooms.setdefault(account, {})[room] = name
        mail = connection.execute(
            f"SELECT owner, {MAIL_COLUMNS} FROM mailbox WHERE id >= ? ORDER BY id",
            (self.mail_cutoff(),),  # expired ones are never delivered (and purged soon)
        )
        for owner, *row in mail:
            self.mailboxes.setdefault(owner, []).append(to_message(tuple(row)))

    def start(self) -> None:
        assert self._connection is not None, "open() first"
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="imkit-store", daemon=True)
        self._thread.start()
        self._watchdog.start(self._loop)

    def _append(
        self, message: ChatMessage, stored: Stored | None, conversation: str | None
    ) -> None:
        row = to_new_row(message, conversation)
        if stored is None and self._loop is not None:
            self._unsent.append(row)
            if len(self._unsent) == 1:
                self._handover = self._loop.call_later(HANDOVER_DELAY, self._hand_over)
            elif len(self._unsent) >= HANDOVER_ROWS:
                self._hand_over()
            return
        self._hand_over()  # the earlier messages first: the order is kept
        if stored is not None:
            self._watchdog.wait(stored)
        self._queue.put((row, stored))

    def _hand_over(self) -> None:
        """Give the writer the messages nobody waits for (see HANDOVER_DELAY)."""
        if self._handover is not None:
            self._handover.cancel()
            self._handover = None
        if self._unsent:
            rows, self._unsent = self._unsent, []
            self._queue.put(rows)

    def history(
        self, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        self._hand_over()  # a request sees every message appended before it
        bounded = self._watchdog.bounded(answer)
        cutoff = self.cutoff()
        read = Read(
            limit, before_number(before), cutoff, bounded, None, room=room, lobby=self.lobby
        )
        self._queue.put(read)

    def search(
        self, words: Words, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """Through the index (rows.search_page), on the writer's queue like history."""
        self._hand_over()
        read = Read(
            limit,
            before_number(before),
            self.cutoff(),
            self._watchdog.bounded(answer),
            None,
            room=room,
            lobby=self.lobby,
            words=words,
        )
        self._queue.put(read)

    def conversation(self, pair: str, limit: int, before: str | None, answer: Answer) -> None:
        self._hand_over()  # as history: it sees every message appended before it
        bounded = self._watchdog.bounded(answer)
        read = Read(limit, before_number(before), self.cutoff(), bounded, pair, lobby=self.lobby)
        self._queue.put(read)

    def _change(
        self, work: Callable[[sqlite3.Connection], object], done: Stored, forgets: bool = False
    ) -> None:
        self._hand_over()
        self._queue.put(Change(work, done, forgets))

    def delete_messages(
        self, ids: list[int] | None, sender_key: str | None, since: int, done: Deleted
    ) -> None:
        # written by the writer thread, read after it posts
        deleted: list[tuple[int, str | None]] = []

        def work(connection: sqlite3.Connection) -> None:
            if ids is not None:
                marks = ", ".join("?" * len(ids))
                query = f"SELECT id, room FROM messages WHERE recipient IS NULL AND id IN ({marks})"
                found = [(row[0], row[1]) for row in connection.execute(query, ids)]
            else:
                rows = connection.execute(
                    "SELECT id, room, sender FROM messages WHERE recipient IS NULL AND id >= ?",
                    (since,),
                )
                found = [(n, room) for n, room, sender in rows if name_key(sender) == sender_key]
            connection.executemany(DELETE_MESSAGE, [(n,) for n, _ in found])
            deleted.extend(found)

        def finished(problem: str | None) -> None:
            if problem is not None:
                done(problem)
                return
            self.forget([n for n, _ in deleted])
            done(deleted)

        self._change(work, finished, forgets=True)

    def find_message(self, number: int, answer: Found) -> None:
        found: list[Any] = []  # written by the writer thread, read after it posts
        query = f"SELECT {COLUMNS} FROM messages WHERE id = ? AND recipient IS NULL AND id >= ?"

        def work(connection: sqlite3.Connection) -> None:
            found.extend(connection.execute(query, (number, self.cutoff())).fetchall())

        def finished(problem: str | None) -> None:
            if problem is not None:
                answer(problem)
            else:
                answer(to_message(tuple(found[0]), self.lobby) if found else None)

        self._change(work, finished)

    def amend_message(self, number: int, text: str | None, edited: float, done: Stored) -> None:
        changed: list[int] = []  # written by the writer thread, read after it posts

        def work(connection: sqlite3.Connection) -> None:
            if text is None:
                cursor = connection.execute(DELETE_MESSAGE, (number,))
            else:
                cursor = connection.execute(EDIT_MESSAGE, (text, edited, number))
            changed.append(cursor.rowcount)

        def finished(problem: str | None) -> None:
            if problem is None:
                self.amend_recent(number, text, edited)
                problem = None if changed and changed[0] > 0 else MESSAGE_GONE
            done(problem)

        self._change(work, finished, forgets=True)

    def save_ban(self, fields: dict[str, Any], done: Stored) -> None:
        row = (fields["target"], json.dumps(fields))
        self._change(lambda c: c.execute(SAVE_BAN, row), done)

    def delete_ban(self, target: str, done: Stored) -> None:
        self._change(lambda c: c.execute("DELETE FROM bans WHERE target = ?", (target,)), done)

    # Accounts: memory changes once the file has (the hub checks memory, and must not
    # see an account that a restart would not), except for mail (add_mail, mail_delivered).

    def save_account(self, account: Account, done: Stored) -> None:
        row = (account.key, json.dumps(account.fields()))

        def saved(problem: str | None) -> None:
            if problem is None:
                self.accounts[account.key] = account
            done(problem)

        self._change(lambda c: c.execute(SAVE_ACCOUNT, row), saved)

    def delete_account(self, key: str, done: Stored) -> None:
        # The messages it sent that still wait for others go too (Store._forget_mail_from
        # says why); the file has the name as the messages spell it, not its key.
        spellings = sorted(self._sender_spellings(key))

        def work(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM accounts WHERE key = ?", (key,))
            connection.execute("DELETE FROM mailbox WHERE owner = ?", (key,))
            connection.execute("DELETE FROM account_rooms WHERE account = ?", (key,))
            connection.executemany(
                "DELETE FROM mailbox WHERE account = ?", [(name,) for name in spellings]
            )
            # Its private conversations too: whoever registers the name next is
            # someone else, and must not read them (only the two parties may).
            connection.execute(
                "DELETE FROM messages WHERE conversation IS NOT NULL AND "
                "(substr(conversation, 1, length(?1) + 1) = ?1 || ':' "
                "OR substr(conversation, -length(?1) - 1) = ':' || ?1)",
                (key,),
            )

        def deleted(problem: str | None) -> None:
            if problem is None:
                self.accounts.pop(key, None)
                self.mailboxes.pop(key, None)
                self.account_rooms.pop(key, None)
                self._forget_mail_from(key)
            done(problem)

        self._change(work, deleted)

    # Registered rooms: memory changes once the file has, as for accounts.

    def save_room(self, key: str, fields: dict[str, Any], done: Stored) -> None:
        row = (key, json.dumps(fields))

        def saved(problem: str | None) -> None:
            if problem is None:
                self.rooms[key] = fields
            done(problem)

        self._change(lambda c: c.execute(SAVE_ROOM, row), saved)

    def delete_room(self, key: str, done: Stored) -> None:
        def deleted(problem: str | None) -> None:
            if problem is None:
                self.rooms.pop(key, None)
            done(problem)

        self._change(lambda c: c.execute("DELETE FROM rooms WHERE key = ?", (key,)), deleted)

    # Webhooks: memory changes once the file has, as for rooms.

    def save_hook(self, hook: Hook, done: Stored) -> None:
        row = (hook.key, json.dumps(hook.fields()))

        def saved(problem: str | None) -> None:
            if problem is None:
                self._hooks[hook.key] = hook
            done(problem)

        save = "INSERT OR REPLACE INTO hooks (key, fields) VALUES (?, ?)"
        self._change(lambda c: c.execute(save, row), saved)

    def remove_hook(self, key: str, done: Stored) -> None:
        def removed(problem: str | None) -> None:
            if problem is None:
                self._hooks.pop(key, None)
            done(problem)

        self._change(lambda c: c.execute("DELETE FROM hooks WHERE key = ?", (key,)), removed)

    # Accounts' rooms: memory at once, the file in the background (nobody waits: a join
    # is not refused because the file could not remember it; the log says so).

    def remember_room(self, account_key: str, room_key: str, room_name: str) -> None:
        super().remember_room(account_key, room_key, room_name)
        row = (account_key, room_key, room_name, account_key)

        def work(connection: sqlite3.Connection) -> None:
            if connection.execute(REMEMBER_ROOM, row).rowcount == 0:
                raise sqlite3.IntegrityError("the account was removed")

        def kept(problem: str | None) -> None:
            if problem is not None:
                if account_key not in self.accounts:  # removed meanwhile
                    self.account_rooms.pop(account_key, None)
                _room_not_kept("remember", problem)

        self._change(work, kept)

    def forget_room(self, account_key: str, room_key: str) -> None:
        super().forget_room(account_key, room_key)
        delete = "DELETE FROM account_rooms WHERE account = ? AND room = ?"
        self._change(
            lambda c: c.execute(delete, (account_key, room_key)),
            partial(_room_not_kept, "forget"),
        )

    def add_mail(self, key: str, message: ChatMessage, done: Stored) -> None:
        # In memory at once, so that the hub counts it against the limit right away.
        self._post_mail(key, message)
        row = (key, *to_row(message), key)

        def work(connection: sqlite3.Connection) -> None:
            if connection.execute(ADD_MAIL, row).rowcount == 0:
                raise sqlite3.IntegrityError("the account was removed")

        def kept(problem: str | None) -> None:
            if problem is not None:
                box = self.mailboxes.get(key, [])
                if message in box:
                    box.remove(message)
            done(problem)

        self._change(work, kept)

    def update_account(self, key: str, changes: dict[str, Any], done: Stored) -> None:
        patch = json.dumps(changes)
        updated: list[int] = []  # written by the writer thread, read after it posts

        def work(connection: sqlite3.Connection) -> None:
            cursor = connection.execute(
                "UPDATE accounts SET fields = json_patch(fields, ?) WHERE key = ?", (patch, key)
            )
            updated.append(cursor.rowcount)

        def finished(problem: str | None) -> None:
            if problem is None and not (updated and updated[0]):
                problem = ACCOUNT_GONE
            current = self.accounts.get(key)
            if problem is None and current is not None:
                self.accounts[key] = Account.from_fields(current.fields() | changes)
            done(problem)

        self._change(work, finished)

    def _drop_mail(self, key: str, messages: list[ChatMessage]) -> None:
        super()._drop_mail(key, messages)
        # One delete for all that went at once (a flush writes many kept messages in one
        # send): the first schedules it for the end of this round of the loop.
        last = max(message_number(m) for m in messages)
        bounds = self._mail_bounds
        if key not in bounds:
            if self._loop is not None:
                self._loop.call_soon(self._delete_mail, key)
            else:  # not started (a tool, a test): at once
                bounds[key] = last
                self._delete_mail(key)
                return
        bounds[key] = max(last, bounds.get(key, 0))

    def _hand_over_mail(self) -> None:
        """The mailbox deletes still waiting for the end of the loop's round, now."""
        for key in list(self._mail_bounds):
            self._delete_mail(key)

    def _delete_mail(self, key: str) -> None:
        bound = self._mail_bounds.pop(key, None)
        if bound is None:
            return  # handed over already (flush, close)

        def forgotten(problem: str | None) -> None:
            if problem is not None:  # they would be delivered again after a restart
                log.warning(
                    "delivered messages could not be removed from the mailbox: %s",
                    problem,
                    extra={"event": "mailbox_delete_failed", "reason": problem},
                )

        delete = "DELETE FROM mailbox WHERE owner = ? AND id <= ?"
        self._change(lambda c: c.execute(delete, (key, bound)), forgotten)

    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109
        if self._thread is None or not self._thread.is_alive():
            return
        reached = anyio.Event()
        self._hand_over()
        self._hand_over_mail()
        self._queue.put(Barrier(reached.set))
        with anyio.move_on_after(timeout):
            await reached.wait()

    async def close(self) -> None:
        self._watchdog.stop()
        if self._thread is not None:
            self._hand_over()
            self._hand_over_mail()
            self._queue.put(CLOSE)
            await anyio.to_thread.run_sync(self._thread.join, CLOSE_TIMEOUT, abandon_on_cancel=True)
            if self._thread.is_alive():  # pragma: no cover - a disk that hangs
                log.error(
                    "the store's writer did not finish within %gs",
                    CLOSE_TIMEOUT,
                    extra={"event": "store_close_timeout", "timeout_s": CLOSE_TIMEOUT},
                )
                return
        self._release()


def _room_not_kept(what: str, problem: str | None) -> None:
    """The outcome of writing an account's room, which nobody waits for: logged when it
    failed (the account is in the room until the server stops, then not again)."""
    if problem is not None:
        log.warning(
            "the store could not %s an account's room: %s",
            what,
            problem,
            extra={"event": "account_room_failed", "reason": problem},
        )
