"""The writer's checks that the files SQLite writes are the ones a restart will read.

SQLite keeps the descriptors it opened: a database file or a ``-wal`` journal removed (or
replaced) under the server goes on taking writes that no restart can see, and a file
overwritten in place (``cp backup.db imkit.db``) is written into as if it were still the
server's. None of that makes a commit fail, so the writer asks before every batch (and
once a second while idle, :data:`WATCH_INTERVAL`), from its own thread:

* is the path still the file that was opened (device and inode)?
* has the file changed since the server's own last write? Only a checkpoint (run inside
  the server's commits) writes the main file of a WAL database, so its size and mtime
  after each of the server's writes are remembered; a change seen before the next one
  was made by another program.
* is ``PATH-wal`` still the journal SQLite has open? If it was removed, its frames are
  still readable through SQLite's descriptor: :meth:`FileWatch.fold` copies them into
  the database file with a checkpoint, then reopens the connection so that SQLite starts
  a new ``-wal`` at the path. Nothing acknowledged is lost, and no batch is acknowledged
  into a journal a restart cannot see.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from imkit.store.schema import connect

log = logging.getLogger("imkit.store")

# While nothing is queued, the writer still checks the files this often, so that a -wal
# removed under an idle server is folded back before a crash can lose what it holds.
WATCH_INTERVAL = 1.0


class FileWatch:
    """What the writer knows of its files; used from the writer thread only."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self.fsync = fsync
        self.identity: tuple[int, int] = (0, 0)
        # The -wal SQLite has open (None: not made yet), and the database file's size and
        # mtime after the server's own last write.
        self.wal_identity: tuple[int, int] | None = None
        self.written: tuple[int, int] = (0, 0)
        # Set once the file was overwritten in place: it stays refused until a restart.
        self.overwritten = False
        # The connection was closed to fold a lost -wal, and a new one is still to be made.
        self._reopen = False

    def remember(self) -> None:
        """After the server's own write: the files as they are now are the server's."""
        with contextlib.suppress(OSError):
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) == self.identity or self.identity == (0, 0):
                self.identity = (stat.st_dev, stat.st_ino)
                self.written = (stat.st_size, stat.st_mtime_ns)
        if self.wal_identity is None:  # once, and again after a fold
            with contextlib.suppress(OSError):
                wal = os.stat(self.wal)
                self.wal_identity = (wal.st_dev, wal.st_ino)

    def problem(self) -> str | None:
        """Why the database file is not the one a restart would read; None when it is."""
        if self.overwritten:
            return self._overwritten()
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"the database file {self.path} was removed"
        except OSError as error:
            return f"the database file {self.path} cannot be checked: {error.strerror}"
        if (stat.st_dev, stat.st_ino) != self.identity:
            return f"the database file {self.path} was replaced by another file"
        if (stat.st_size, stat.st_mtime_ns) != self.written:
            self.overwritten = True
            return self._overwritten()
        return None

    def _overwritten(self) -> str:
        return (
            f"the database file {self.path} was overwritten by another program; "
            "restart the server (after restoring the file you meant to keep)"
        )

    def wal_lost(self) -> bool:
        """True when PATH-wal is no longer the journal SQLite writes to."""
        if self.wal_identity is None:
            return False
        try:
            wal = os.stat(self.wal)
        except OSError:
            return True
        return (wal.st_dev, wal.st_ino) != self.wal_identity

    def fold(self, connection: sqlite3.Connection) -> tuple[sqlite3.Connection, str | None]:
        """Copy what the lost -wal holds into the database file and start a new -wal:
        the connection to use from now on, and why that failed (None: it worked)."""
        frames = 0
        if not self._reopen:
            try:
                row = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as error:
                return connection, f"the journal {self.wal} was removed and cannot be read: {error}"
            busy, frames, copied = row
            if busy or copied != frames:
                # A reader still uses older frames; the next check tries again.
                return connection, (
                    f"the journal {self.wal} was removed and its frames cannot be copied into "
                    f"the database yet ({copied} of {frames}: a reader holds the file)"
                )
            connection.close()  # SQLite forgets the lost -wal, and makes one at the path
            self._reopen = True
        try:
            fresh = connect(self.path, fsync=self.fsync)
        except Exception as error:  # noqa: BLE001 - ServeError or sqlite3.Error: said, not raised
            return connection, f"the journal {self.wal} was removed and cannot be remade: {error}"
        self._reopen = False
        self.wal_identity = None
        self.remember()
        log.warning(
            "the journal %s was removed under the server: its %d frames were copied into "
            "the database and a new journal was started",
            self.wal,
            frames,
            extra={"event": "store_wal_folded", "frames": frames},
        )
        return fresh, None
