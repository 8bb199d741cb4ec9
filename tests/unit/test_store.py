"""The store against real SQLite files: ids, restarts, retention, files it must refuse,
the lock, and a file that stops taking writes.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_store.py."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

import anyio

from imkit.protocol import ChatMessage
from imkit.rules.msgid import MessageIds, format_msgid, msgid_floor, parse_msgid
from imkit.store import MemoryStore, Page, Store, default_path, open_store
from tests.support import Clock
from tests.support.store import DAY, T0, append_all, history, sqlite_store
from tests.support.store import message as any_message


def message(store: Store, text: str, at: float, sender: str = "alex") -> ChatMessage:
    """A message of the lobby, as the hub appends it (and the store gives it back)."""
    return replace(any_message(store, text, at, sender), room=store.lobby, lobby=True)


# ----------------------------------------------------------------------- msgids


def test_msgids_are_fixed_width_ordered_and_never_go_back() -> None:
    ids = MessageIds()
    numbers = [ids.next(T0) for _ in range(1500)]  # 1,500 in one millisecond
    assert numbers == sorted(set(numbers))
    texts = [format_msgid(n) for n in numbers]
    assert all(len(t) == 16 and t.isdigit() for t in texts)
    assert texts == sorted(texts)  # string order is the server's order
    assert ids.next(T0 - 3600) == numbers[-1] + 1  # the clock stepped back: ids do not
    assert ids.next(T0 + 1) == msgid_floor(T0 + 1)
    assert parse_msgid(texts[0]) == numbers[0]
    for bad in ["", "123", "x" * 16, "1" * 17, " 123456789012345", "１" * 16]:
        assert parse_msgid(bad) is None


# -------------------------------------------------------------- SQLite, restarts


async def test_messages_and_ids_survive_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "deep" / "er" / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    first = [message(store, f"m{i}", T0 + i / 1000) for i in range(5)]
    assert await append_all(store, first) == [None] * 5
    await store.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = sqlite_store(path, clock)
    try:
        page = await history(again)
        assert page == Page(tuple(first), False)  # ids, times, names and text as sent
        assert again.recent(3) == tuple(first[-3:])  # replay is primed from the file
        later = message(again, "after", T0)  # the clock went back: the id does not
        assert later.msgid is not None and first[-1].msgid is not None
        assert later.msgid > first[-1].msgid
    finally:
        await again.close()


async def test_ids_are_not_reused_after_retention_deleted_everything(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, retain_days=1, purge_interval=0.05)
    old = [message(store, "old", T0 + 3600) for _ in range(3)]  # an hour ahead of T0
    await append_all(store, old)
    clock.now = T0 + 2 * DAY
    with anyio.fail_after(10):
        while sqlite3.connect(path).execute("SELECT count(*) FROM messages").fetchone()[0]:
            await anyio.sleep(0.05)
    await store.close()
    clock.now = T0  # and the clock is back before the deleted ones
    again = sqlite_store(path, clock)
    try:
        new = message(again, "new", clock.now)
        assert all(
            new.msgid is not None and m.msgid is not None and new.msgid > m.msgid for m in old
        )
    finally:
        await again.close()


async def test_paging_is_exclusive_and_says_when_there_is_more(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "imkit.db", Clock(T0))
    try:
        sent = [message(store, f"m{i}", T0 + i) for i in range(250)]
        await append_all(store, sent)
        pages, before = [], None
        for _ in range(3):
            page = await history(store, 100, before)
            pages.append(page)
            before = page.messages[0].msgid
        assert [len(p.messages) for p in pages] == [100, 100, 50]
        assert [p.more for p in pages] == [True, True, False]
        got = [m for p in reversed(pages) for m in p.messages]
        assert got == sent  # each message once, oldest first
        # A boundary that names no message kept is still a boundary.
        between = format_msgid((parse_msgid(sent[10].msgid or "") or 0) + 1)
        page = await history(store, 3, between)
        assert [m.text for m in page.messages] == ["m8", "m9", "m10"] and page.more
    finally:
        await store.close()


async def test_retention_hides_then_deletes_in_the_background(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, retain_days=30, purge_interval=0.05)
    try:
        old = [message(store, f"old{i}", T0 - 40 * DAY + i) for i in range(1200)]
        young = [message(store, f"young{i}", T0 - DAY + i) for i in range(3)]
        # Appended at "now" but dated: what matters is the message's own time.
        await append_all(store, old + young)
        page = await history(store)
        assert [m.text for m in page.messages] == ["young0", "young1", "young2"]
        assert not page.more
        assert [m.text for m in store.recent(5)] == ["young0", "young1", "young2"]
        with anyio.fail_after(10):
            while sqlite3.connect(path).execute("SELECT count(*) FROM messages").fetchone()[0] > 3:
                await anyio.sleep(0.05)
        clock.now = T0 + 30 * DAY  # a month on, the young ones expire too
        assert (await history(store)).messages == ()
    finally:
        await store.close()


async def test_memory_store_pages_and_retains_like_the_file() -> None:
    clock = Clock(T0)
    store = MemoryStore(clock=clock, retain_days=30, capacity=1000)
    sent = [message(store, f"m{i}", T0 - 31 * DAY + i * DAY) for i in range(31)]
    await append_all(store, sent)
    page = await history(store, 10)
    assert [m.text for m in page.messages] == [f"m{i}" for i in range(21, 31)]
    assert page.more
    older = await history(store, 100, page.messages[0].msgid)
    assert [m.text for m in older.messages] == [f"m{i}" for i in range(1, 21)]  # m0 expired
    assert not older.more


# ------------------------------------------------------------ files it refuses


def test_the_default_file_is_per_port_under_xdg_state_home(tmp_path: Path) -> None:
    # conftest sets XDG_STATE_HOME for every test.
    assert default_path(8888) == Path(os.environ["XDG_STATE_HOME"]) / "imkit" / "imkit-8888.db"
    assert isinstance(open_store(None, 0, clock=Clock(T0)), MemoryStore)  # port 0: memory
    assert isinstance(open_store("none", 8888, clock=Clock(T0)), MemoryStore)


async def test_a_file_moved_away_is_noticed_and_its_return_too(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    try:
        assert await append_all(store, [message(store, "kept", T0)]) == [None]
        path.rename(tmp_path / "elsewhere.db")  # SQLite would go on writing to it
        [problem] = await append_all(store, [message(store, "lost", T0)])
        assert problem is not None and "was removed" in problem
        assert store.problem == problem
        (tmp_path / "elsewhere.db").rename(path)  # the same file is back
        with anyio.fail_after(10):
            while store.problem is not None:
                await anyio.sleep(0.05)
        assert await append_all(store, [message(store, "back", T0)]) == [None]
        assert [m.text for m in (await history(store)).messages] == ["kept", "back"]
    finally:
        await store.close()
