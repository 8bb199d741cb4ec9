"""The store and rooms (docs/rooms.md): rooms' messages beside the lobby's, their pages
and retention, registered rooms and accounts' rooms across a reopen, and the migration
of a file written before rooms; against real SQLite files, and the memory store where
it answers the same questions."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from imkit.protocol import ChatMessage
from imkit.rules.accounts import Account, hash_password
from imkit.rules.names import name_key
from imkit.rules.rooms import DEFAULT_LOBBY, RoomState, room_key
from imkit.store import MemoryStore, Page, SqliteStore, Store
from imkit.store.base import awaited
from imkit.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.support import Clock
from tests.support.store import DAY, T0, append_all, sqlite_store

BUILDS = room_key("#Builds")
ALEX = name_key("Alex")


def said(store: Store, text: str, at: float, room: str | None = None) -> ChatMessage:
    """A public message as the hub appends it: the lobby's (``room`` None) or a room's."""
    msgid = store.new_msgid(at)
    if room is None:
        return ChatMessage("alex", "127.0.0.1:1", None, text, at, msgid, None, store.lobby, True)
    return ChatMessage("alex", "127.0.0.1:1", None, text, at, msgid, None, room)


async def page(
    store: Store, room: str | None = None, limit: int = 100, before: str | None = None
) -> Page:
    got: Page | str = await awaited(partial(store.history, limit, before, room=room), 10)
    assert isinstance(got, Page), got
    return got


async def outcome(ask: partial[None]) -> str | None:
    result: str | None = await awaited(ask, 10)
    return result


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    if request.param == "sqlite":
        made = sqlite_store(tmp_path / "imkit.db", Clock(T0), retain_days=30)
    else:
        made = MemoryStore(clock=Clock(T0), retain_days=30)
    try:
        yield made
    finally:
        await made.close()


# ------------------------------------------------------------ rooms' messages


async def test_a_rooms_messages_are_its_own_and_not_the_lobbys(store: Store) -> None:
    lobby = [said(store, f"lobby{i}", T0 + i) for i in range(3)]
    builds = [said(store, f"build{i}", T0 + 10 + i, "#Builds") for i in range(3)]
    other = said(store, "elsewhere", T0 + 20, "#ops")
    # Each spelling of the room is the room: the key pages it, the name comes back.
    spelled = said(store, "spelled", T0 + 21, "#builds")
    mixed = [lobby[0], builds[0], builds[1], lobby[1], other, builds[2], spelled, lobby[2]]
    assert await append_all(store, mixed) == [None] * len(mixed)  # ok = stored, rooms too

    assert (await page(store)).messages == tuple(lobby)
    assert (await page(store, BUILDS)).messages == (*builds, spelled)
    assert [m.room for m in (await page(store, BUILDS)).messages][-2:] == ["#Builds", "#builds"]
    assert [m.text for m in (await page(store, room_key("#OPS"))).messages] == ["elsewhere"]
    assert (await page(store, room_key("#nobody"))).messages == ()
    # Only the lobby's are replayed on connect.
    assert store.recent(10) == tuple(lobby)


async def test_a_rooms_pages_are_exclusive_and_say_when_there_is_more(store: Store) -> None:
    sent = []
    for i in range(120):
        sent.append(said(store, f"b{i}", T0 + i, "#builds"))
        sent.append(said(store, f"l{i}", T0 + i + 0.5))  # the lobby between each
    await append_all(store, sent)
    builds = [m for m in sent if m.room == "#builds"]
    pages, before = [], None
    for _ in range(3):
        got = await page(store, BUILDS, 50, before)
        pages.append(got)
        before = got.messages[0].msgid
    assert [len(p.messages) for p in pages] == [50, 50, 20]
    assert [p.more for p in pages] == [True, True, False]
    assert [m for p in reversed(pages) for m in p.messages] == builds
    lobby = await page(store, None, 10)
    assert [m.text for m in lobby.messages] == [f"l{i}" for i in range(110, 120)] and lobby.more


async def test_retention_hides_a_rooms_old_messages(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, retain_days=30, purge_interval=0.05)
    try:
        old = [said(store, f"old{i}", T0 - 40 * DAY + i, "#builds") for i in range(600)]
        young = [said(store, f"young{i}", T0 - DAY + i, "#builds") for i in range(2)]
        await append_all(store, old + young)
        got = await page(store, BUILDS)
        assert [m.text for m in got.messages] == ["young0", "young1"] and not got.more
        with anyio.fail_after(10):  # and deletes them in the background
            while sqlite3.connect(path).execute("SELECT count(*) FROM messages").fetchone()[0] > 2:
                await anyio.sleep(0.05)
        clock.now = T0 + 30 * DAY
        assert (await page(store, BUILDS)).messages == ()
    finally:
        await store.close()


async def test_the_memory_store_keeps_rooms_within_its_bound() -> None:
    store = MemoryStore(clock=Clock(T0), capacity=10)
    sent = [said(store, f"m{i}", T0 + i, "#builds" if i % 2 else None) for i in range(30)]
    await append_all(store, sent)
    assert [m.text for m in (await page(store, BUILDS)).messages] == [
        "m21",
        "m23",
        "m25",
        "m27",
        "m29",
    ]
    assert [m.text for m in (await page(store)).messages] == ["m20", "m22", "m24", "m26", "m28"]


async def test_old_rows_and_the_lobbys_come_back_named_as_the_lobby_is_now(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    plain = ChatMessage("alex", "127.0.0.1:1", None, "no room", T0, store.new_msgid(T0))
    room = said(store, "in a room", T0 + 1, "#Builds")
    await append_all(store, [plain, room, said(store, "lobby", T0 + 2)])
    [first, _] = (await page(store)).messages
    assert (first.room, first.lobby) == (DEFAULT_LOBBY, True)
    await store.close()

    again = SqliteStore(path, clock=clock)
    again.open()
    again.lobby = "#general"  # --lobby, set after the file primed the replay
    again.start()
    try:
        assert [(m.text, m.room, m.lobby) for m in again.recent(5)] == [
            ("no room", "#general", True),
            ("lobby", "#general", True),
        ]
        got = (await page(again)).messages
        assert [(m.room, m.lobby) for m in got] == [("#general", True)] * 2
        [kept] = (await page(again, BUILDS)).messages
        assert (kept.room, kept.lobby, kept.text) == ("#Builds", False, "in a room")
        assert kept == room
    finally:
        await again.close()


async def test_private_messages_keep_no_room(store: Store) -> None:
    private = ChatMessage("Alex", "127.0.0.1:1", "sam", "hi", T0, store.new_msgid(T0), "Alex")
    store.append(private, None, "alex:sam")
    got: Page | str = await awaited(partial(store.conversation, "alex:sam", 10, None), 10)
    assert isinstance(got, Page) and got.messages == (private,)
    assert got.messages[0].room is None


async def test_the_lobbys_page_is_read_through_the_primary_key(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "imkit.db", Clock(T0))
    await store.close()
    with sqlite3.connect(tmp_path / "imkit.db") as db:
        lobby = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE recipient IS NULL AND "
            "room_key IS NULL AND id < ? AND id >= ? ORDER BY id DESC LIMIT 10",
            (1 << 62, 0),
        ).fetchall()
        assert any("INTEGER PRIMARY KEY" in row[-1] for row in lobby), lobby
        assert not any("TEMP B-TREE" in row[-1] for row in lobby), lobby
        room = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE room_key = ? AND id < ? "
            "AND id >= ? ORDER BY id DESC LIMIT 10",
            (BUILDS, 1 << 62, 0),
        ).fetchall()
        assert any("messages_room" in row[-1] for row in room), room
        assert not any("TEMP B-TREE" in row[-1] for row in room), room


async def test_history_delete_takes_rooms_messages_too(store: Store) -> None:
    lobby = said(store, "lobby", T0)
    builds = [said(store, f"b{i}", T0 + 1 + i, "#builds") for i in range(3)]
    await append_all(store, [lobby, *builds])
    number = int(builds[1].msgid or 0)
    deleted = await awaited(partial(store.delete_messages, [number], None, 0), 10)
    assert deleted == [(number, "#builds")]
    assert [m.text for m in (await page(store, BUILDS)).messages] == ["b0", "b2"]
    # By sender: the lobby's and the room's alike.
    gone = await awaited(partial(store.delete_messages, None, name_key("alex"), 0), 10)
    assert isinstance(gone, list) and sorted(room or "" for _, room in gone) == [
        "",
        "#builds",
        "#builds",
    ]
    assert (await page(store, BUILDS)).messages == () and (await page(store)).messages == ()


# ------------------------------------------------ registered rooms, accounts' rooms


def account(name: str) -> Account:
    return Account(name, hash_password("secret", cost=1), T0, None, None)


async def test_registered_rooms_and_accounts_rooms_survive_a_reopen(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    state = RoomState("#Builds", registered=True, topic="nightly", operators={ALEX})
    ops = RoomState("#ops", registered=True)
    try:
        assert await outcome(partial(store.save_account, account("Alex"))) is None
        assert await outcome(partial(store.save_room, BUILDS, state.fields())) is None
        assert await outcome(partial(store.save_room, room_key("#ops"), ops.fields())) is None
        state.topic = "nightly builds"  # replaced, not added
        assert await outcome(partial(store.save_room, BUILDS, state.fields())) is None
        assert await outcome(partial(store.delete_room, room_key("#ops"))) is None
        assert store.rooms == {BUILDS: state.fields()}

        # In memory at once, in the order joined; a second join keeps its place.
        for name in ("#zeta", "#Builds", "#alpha", "#BUILDS"):
            store.remember_room(ALEX, room_key(name), name)
        store.remember_room(ALEX, room_key("#gone"), "#gone")
        store.forget_room(ALEX, room_key("#gone"))
        joined = {room_key("#zeta"): "#zeta", BUILDS: "#BUILDS", room_key("#alpha"): "#alpha"}
        assert store.account_rooms == {ALEX: joined}
        assert list(store.account_rooms[ALEX]) == list(joined)
    finally:
        await store.close()

    again = sqlite_store(path, clock)
    try:
        assert again.rooms == {BUILDS: state.fields()}
        assert RoomState.from_fields(again.rooms[BUILDS]).topic == "nightly builds"
        assert list(again.account_rooms[ALEX].items()) == list(joined.items())
        # Unregistering a room leaves accounts' rooms alone; removing an account does not.
        assert await outcome(partial(again.delete_room, BUILDS)) is None
        assert again.rooms == {} and BUILDS in again.account_rooms[ALEX]
        assert await outcome(partial(again.delete_account, ALEX)) is None
        assert again.account_rooms == {}
    finally:
        await again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM account_rooms").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM rooms").fetchone()[0] == 0


async def test_the_memory_store_keeps_rooms_in_its_dicts() -> None:
    store = MemoryStore(clock=Clock(T0))
    fields = RoomState("#builds", registered=True).fields()
    assert await outcome(partial(store.save_room, BUILDS, fields)) is None
    assert store.rooms == {BUILDS: fields}
    store.remember_room(ALEX, BUILDS, "#builds")
    assert await outcome(partial(store.delete_room, BUILDS)) is None
    assert store.rooms == {} and store.account_rooms == {ALEX: {BUILDS: "#builds"}}
    store.forget_room(ALEX, BUILDS)
    assert store.account_rooms == {}
    store.remember_room(ALEX, BUILDS, "#builds")
    assert await outcome(partial(store.delete_account, ALEX)) is None
    assert store.account_rooms == {}


async def test_a_room_remembered_for_no_account_is_not_kept_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "imkit.db"
    store = sqlite_store(path, Clock(T0))
    try:
        with caplog.at_level(logging.WARNING, logger="imkit.store"):
            store.remember_room(ALEX, BUILDS, "#builds")  # Alex was removed meanwhile
            await store.flush(10)
            with anyio.fail_after(10):
                while store.account_rooms:
                    await anyio.sleep(0.01)
        assert any(getattr(r, "event", None) == "account_room_failed" for r in caplog.records)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM account_rooms").fetchone()[0] == 0


# ------------------------------------------------------------------ migration


async def test_a_schema_4_file_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as db:  # a file written by the imkit of schema 4
        for version in (1, 2, 3, 4):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
        db.execute(
            "INSERT INTO messages (id, time, sender, addr, recipient, text, account)"
            f" VALUES (1799999999000000, {T0 - 1}, 'alex', '127.0.0.1:50312', NULL, 'hi',"
            " 'Alex')"
        )
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=4")
    assert SCHEMA_VERSION == 8  # 5: rooms, 6: hooks, 7: edited messages, 8: search
    store = SqliteStore(path, clock=Clock(T0))
    store.open()
    store.lobby = "#general"
    store.start()
    try:
        assert store.rooms == {} and store.account_rooms == {}
        [kept] = store.recent(5)
        assert (kept.text, kept.account, kept.room, kept.lobby) == ("hi", "Alex", "#general", True)
        assert (await page(store)).messages == (kept,)
        room = said(store, "in a room", T0, "#builds")
        assert await append_all(store, [room]) == [None]
        assert (await page(store, BUILDS)).messages == (room,)
        assert (await page(store)).messages == (kept,)
        fields = RoomState("#builds", registered=True).fields()
        assert await outcome(partial(store.save_room, BUILDS, fields)) is None
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT room, room_key FROM messages ORDER BY id").fetchall() == [
            (None, None),
            ("#builds", BUILDS),
        ]
