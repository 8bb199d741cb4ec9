"""The SQLite store's writer thread: the half of :class:`~imkit.store.sqlite.SqliteStore`
that touches the file once it is open (:class:`SqliteWriter`, its base class).

The thread takes everything queued at once (rows, reads, changes, barriers: :mod:`.rows`)
and carries it out in order, consecutive messages as one transaction, then hands the
outcome back to the loop with one ``call_soon_threadsafe`` for the whole batch.

When a commit fails (disk full, the file removed or replaced, a read-only file system),
the batch is answered with the reason and :attr:`~imkit.store.base.Store.problem` is set,
so the hub refuses public messages until a write works again; the writer tries one small
write a second meanwhile. SQLite goes on writing to a file that was removed (the space is
only freed at exit), to a ``-wal`` that was removed, and into a file overwritten in place,
so the writer checks its files before each batch (:mod:`.files`): a message written there
would be lost at restart, and must not be acknowledged.

A disk that stops answering leaves the writer thread in the kernel with no error to
report; the event loop watches it (:mod:`.watchdog`).

Old messages are deleted in the background, a few hundred per transaction, and only
while no messages are waiting, so retention never stalls the chat.

The search index (``messages_fts``, schema 8) follows the messages table by SQLite
triggers on INSERT, DELETE and UPDATE OF text: every write here, and any later one that
edits or blanks a message's text, keeps it in step without calling anything. A deleted
or edited message is out of the index at once (no search finds it), but FTS5 keeps its
words in the index's older segments until they are merged; so after a deletion or an
edit the writer merges the index's segments into one (what FTS5's ``optimize`` does),
in steps of :data:`COMPACT_STEP` pages (FTS5 ``merge``, at most about 0.1 s each for a
million messages) taken only while nothing else waits, starting as soon as it can, then
at most once every :data:`COMPACT_INTERVAL` seconds, and finished at close; ``PRAGMA
secure_delete`` overwrites the pages that frees. Words of a deleted message leave the
file within that interval (docs/integrations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imkit.store.base import Page, Store, Stored
from imkit.store.files import WATCH_INTERVAL, FileWatch
from imkit.store.rows import INSERT, Barrier, Change, NewRow, Read, purge_chunk, read_page
from imkit.store.watchdog import Watchdog

log = logging.getLogger("imkit.store")

# While writes fail, the writer tries again this often.
PROBE_INTERVAL = 1.0
# Retention deletes at most this many messages per transaction.
PURGE_CHUNK = 500
# After a deletion or an edit, the search index is compacted at most this often...
COMPACT_INTERVAL = 60.0
# ... in steps of this many pages (FTS5 'merge' with a negative count: towards one segment).
COMPACT_STEP = 500

# The queue item that ends the writer thread (SqliteStore.close).
CLOSE = object()


class SqliteWriter(Store):
    """The writer thread of :class:`~imkit.store.sqlite.SqliteStore` (see the module
    docstring), and what its outcomes do on the loop. The loop side opens the file,
    starts the thread on :meth:`_run` and puts work on ``_queue``."""

    def __init__(
        self,
        path: Path,
        *,
        retain_days: float,
        offline_days: float,
        clock: Callable[[], float],
        fsync: bool,
        purge_interval: float,
    ) -> None:
        super().__init__(retain_days=retain_days, offline_days=offline_days, clock=clock)
        self.path = path
        self.fsync = fsync
        self.purge_interval = purge_interval
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._connection: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._files = FileWatch(path, fsync=fsync)  # the writer thread's, once it runs
        self._loop: asyncio.AbstractEventLoop | None = None
        # Writer thread only: its own view of whether writes fail.
        self._failing: str | None = None
        # A deletion or an edit was written since the search index was last compacted.
        self._forgotten = False
        self._watchdog = Watchdog(
            str(path),
            self._set_problem,
            lambda: self.problem,
            lambda: self._failing,
        )

    # ------------------------------------------- on the loop: the writer's outcomes

    def _release(self) -> None:
        """Close the file and drop its lock: on the loop (close) or as the thread ends."""
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # only now: closing it drops SQLite's locks too
            self._lock_fd = None

    def _set_problem(self, problem: str | None) -> None:
        if problem is not None and self.problem is None:
            log.error(
                "the store cannot write: %s; public messages are refused until it can",
                problem,
                extra={"event": "store_failed", "reason": problem},
            )
        elif problem is None and self.problem is not None:
            log.warning(
                "the store writes again; public messages are accepted",
                extra={"event": "store_recovered"},
            )
        self.problem = problem

    def _batch_done(self, waiters: list[Stored], problem: str | None) -> None:
        self._set_problem(problem)
        self._watchdog.answer(waiters, problem)

    # ------------------------------------------------------ in the writer thread

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        next_purge = time.monotonic() + min(1.0, self.purge_interval)
        next_probe = 0.0
        next_watch = time.monotonic() + WATCH_INTERVAL
        next_compact = 0.0
        closing = False
        purging = self.retain_days > 0 or self.offline_days > 0
        while not closing:
            deadlines = [next_watch]
            # The purge waits while the store fails (below): its deadline then too,
            # or the wait would be zero and the thread would spin until it wrote again.
            if purging and self._failing is None:
                deadlines.append(next_purge)
            if self._failing is not None:
                deadlines.append(next_probe)
            if self._forgotten and self._failing is None:
                deadlines.append(next_compact)
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            items: list[object] = []
            try:
                items.append(self._queue.get(timeout=timeout))
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            was_failing = self._failing
            self._watchdog.busy_since = time.monotonic()
            closing = self._handle(items)
            now = time.monotonic()
            if self._failing is not None:
                if was_failing is None:
                    next_probe = now + PROBE_INTERVAL  # it has just failed: not at once
                elif now >= next_probe:
                    self._probe()
                    next_probe = now + PROBE_INTERVAL
            if now >= next_watch:
                self._watch()
                next_watch = time.monotonic() + WATCH_INTERVAL
            if purging and now >= next_purge and self._failing is None:
                self._purge()
                next_purge = time.monotonic() + self.purge_interval
            if self._forgotten and now >= next_compact and self._failing is None:
                if self._compact(until_done=False):  # else work came: go on after it
                    next_compact = time.monotonic() + COMPACT_INTERVAL
            self._watchdog.busy_since = None
        if self._forgotten:
            self._compact(until_done=True)
        self._remember_last_id()
        self._release()

    def _handle(self, items: list[object]) -> bool:
        """Carry out ``items`` in order, consecutive messages as one transaction; True
        when the store is closing."""
        rows: list[NewRow] = []
        waiters: list[Stored] = []
        closing = False
        for item in items:
            if type(item) is tuple:  # one message, and who waits for it
                row, stored = item
                rows.append(row)
                if stored is not None:
                    waiters.append(stored)
                continue
            if type(item) is list:  # messages nobody waits for
                rows.extend(item)
                continue
            if rows:
                self._write(rows, waiters)
                rows, waiters = [], []
            if isinstance(item, Read):
                self._read(item)
            elif isinstance(item, Change):
                problem = self._file_problem() or self._transaction(item.work, last_id=0)
                self._forgotten = self._forgotten or (item.forgets and problem is None)
                self._post(item.done, problem)
            elif isinstance(item, Barrier):
                self._post(item.reached)
            elif item is CLOSE:
                closing = True
        if rows:
            self._write(rows, waiters)
        return closing

    def _write(self, rows: list[NewRow], waiters: list[Stored]) -> None:
        problem = self._file_problem()
        if problem is None:
            started = time.monotonic()
            problem = self._transaction(
                lambda connection: connection.executemany(INSERT, rows),
                last_id=rows[-1][0],
            )
            if self.observe_commit is not None:  # once a batch, failed ones too
                self.observe_commit(time.monotonic() - started)
        if problem is not None:
            self.failed_batches += 1
        changed, self._failing = problem != self._failing, problem
        if waiters or changed:
            # Text-mode messages wait for nobody: a batch of only those does not wake
            # the event loop (on a busy chat that is one wake-up a message saved).
            self._post(self._batch_done, waiters, problem)

    def _transaction(
        self, work: Callable[[sqlite3.Connection], object], last_id: int
    ) -> str | None:
        connection = self._connection
        assert connection is not None
        self._watchdog.busy_since = time.monotonic()  # a stall is one step that hangs
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                work(connection)
                connection.execute(
                    "UPDATE meta SET value = max(value, ?) WHERE key = 'last_id'", (last_id,)
                )
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            return f"cannot write {self.path}: {error}"
        self._files.remember()  # a checkpoint in the commit may have written the file
        return None

    def _file_problem(self) -> str | None:
        """Why a write now would not be seen by a restart (None: it would); a -wal
        removed under the server is folded into the file first (see .files)."""
        problem = self._files.problem()
        if problem is None and self._files.wal_lost():
            assert self._connection is not None
            self._connection, problem = self._files.fold(self._connection)
        return problem

    def _watch(self) -> None:
        """The files checked while idle too: a lost -wal folded back before a crash."""
        if self._failing is None and (problem := self._file_problem()) is not None:
            self._failing = problem
            self._post(self._set_problem, problem)

    def _probe(self) -> None:
        """One small write while writes fail; when it works, messages are accepted again."""
        problem = self._file_problem()
        if problem is None:
            problem = self._transaction(
                lambda connection: connection.execute(
                    "UPDATE meta SET value = ? WHERE key = 'checked_at'", (self.clock(),)
                ),
                last_id=0,
            )
        if problem is None or problem != self._failing:
            self._failing = problem
            self._post(self._set_problem, problem)

    def _read(self, read: Read) -> None:
        assert self._connection is not None
        self._watchdog.busy_since = time.monotonic()
        try:
            page: Page | str = read_page(self._connection, read)
        except sqlite3.Error as error:
            page = f"history cannot be read: {error}"
        self._post(read.answer, page)

    def _purge(self) -> None:
        """Delete expired messages (private ones too) and expired waiting messages, a
        chunk per transaction, while nothing else waits."""
        if self.retain_days > 0:
            self._purge_table("messages", self.cutoff())
        if self.offline_days > 0:
            self._purge_table("mailbox", self.mail_cutoff())

    def _purge_table(self, table: str, cutoff: int) -> None:
        assert self._connection is not None
        deleted = PURGE_CHUNK
        while deleted == PURGE_CHUNK and self._queue.empty():
            self._watchdog.busy_since = time.monotonic()  # a long purge is no stall
            try:
                deleted = purge_chunk(self._connection, table, cutoff, PURGE_CHUNK)
            except sqlite3.Error as error:
                log.debug(
                    "retention could not delete old rows of %s: %s",
                    table,
                    error,
                    extra={"event": "retention_failed", "reason": str(error), "table": table},
                )
                return
            self._files.remember()

    def _compact(self, *, until_done: bool) -> bool:
        """Merge the search index's segments a step at a time, while nothing else waits
        (``until_done``: to the end), so that the words of deleted and edited messages
        leave the file (module docstring); whether it is done."""
        connection = self._connection
        assert connection is not None
        step = f"INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', -{COMPACT_STEP})"
        while until_done or self._queue.empty():
            self._watchdog.busy_since = time.monotonic()  # each step is short
            before = connection.total_changes
            try:
                with connection:
                    connection.execute(step)
            except sqlite3.Error as error:
                log.warning(
                    "the search index could not be compacted: %s",
                    error,
                    extra={"event": "index_compact_failed", "reason": str(error)},
                )
                self._forgotten = False  # tried again after the next deletion or edit
                return True
            self._files.remember()
            if connection.total_changes - before < 2:  # FTS5's sign that it had no work
                self._forgotten = False
                return True
        return False

    def _remember_last_id(self) -> None:
        # Private messages have ids too but are not stored: keep the greatest id given.
        if self._failing is None:
            self._transaction(lambda connection: None, last_id=self._ids.last)
