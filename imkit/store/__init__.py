"""The store: the one place where imkit keeps what outlives a connection.

That is the history of public messages and the msgid sequence, bans, accounts, the
private messages waiting for an account that is offline, the conversations between
accounts, and the secret of ``--hide-addresses``' pseudonyms. The hub sees only the
interface in :mod:`.base`; which store it gets is decided here, from ``--db`` (a cluster
node's is :mod:`imkit.cluster.store`):

    base.py     the interface (Store), a page of history, retention
    memory.py   --db none (and --port 0 without --db): in memory, lost at exit
    schema.py   opening an SQLite file: its folder, lock, kind, version, damage, migrations
    sqlite.py   the default: an SQLite file, one writer thread, one commit a batch
    writer.py   that writer thread: transactions, failed writes, retention
    rows.py     what the loop hands that writer thread, and the SQL it runs
    files.py    the writer's checks of its files (removed, replaced, overwritten, -wal)
    watchdog.py the loop's watch on the writer (a disk that stops answering)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from imkit.rules.accounts import DEFAULT_OFFLINE_DAYS
from imkit.store.base import DEFAULT_RETAIN_DAYS, Answer, Deleted, Page, Store, Stored
from imkit.store.memory import MemoryStore
from imkit.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_RETAIN_DAYS",
    "MEMORY",
    "Answer",
    "Deleted",
    "MemoryStore",
    "Page",
    "SqliteStore",
    "Store",
    "Stored",
    "default_path",
    "open_store",
]

# --db none: keep nothing on disk.
MEMORY = "none"


def default_path(port: int) -> Path:
    """``$XDG_STATE_HOME/imkit/imkit-PORT.db`` (XDG's default: ``~/.local/state``)."""
    state = os.environ.get("XDG_STATE_HOME") or ""
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "imkit" / f"imkit-{port}.db"


def open_store(
    db: str | None,
    port: int,
    *,
    retain_days: float = DEFAULT_RETAIN_DAYS,
    offline_days: float = DEFAULT_OFFLINE_DAYS,
    clock: Callable[[], float],
    fsync: bool = False,
) -> Store:
    """The store ``--db`` asks for, opened; ServeError when the file cannot be used.

    ``None`` is the default file for ``port``; but port 0 (a new port each start) would
    mean a new file each start, so it keeps history in memory, like ``--db none``.
    """
    if db == MEMORY or (db is None and port == 0):
        return MemoryStore(retain_days=retain_days, offline_days=offline_days, clock=clock)
    path = Path(db).expanduser() if db is not None else default_path(port)
    store = SqliteStore(
        path, retain_days=retain_days, offline_days=offline_days, clock=clock, fsync=fsync
    )
    store.open()
    return store
