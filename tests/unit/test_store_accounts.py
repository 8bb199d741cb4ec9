"""The store's accounts, waiting private messages and private conversations, against
real SQLite files (and the memory store where it answers the same questions)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import anyio
import pytest

from imkit.protocol import ChatMessage
from imkit.rules.accounts import Account, conversation_key, hash_password
from imkit.rules.names import name_key
from imkit.store import MemoryStore, Page, SqliteStore, Store, Stored
from imkit.store.base import awaited
from imkit.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.support import Clock
from tests.support.store import DAY, T0, append_all, history, message, sqlite_store

ALEX, SAM, KIM = name_key("Alex"), name_key("sam"), name_key("kim")
ALEX_SAM, ALEX_KIM = conversation_key(ALEX, SAM), conversation_key(KIM, ALEX)


def account(
    name: str, password: str = "secret", last_login: float | None = None, muted: bool = False
) -> Account:
    muted_until = float("inf") if muted else None
    return Account(name, hash_password(password, cost=1), T0, last_login, muted_until)


def private(
    store: Store, sender: str, to: str, text: str, at: float = T0, logged_in: bool = True
) -> ChatMessage:
    """A private message from ``sender`` (logged in to its account, or a guest)."""
    msgid = store.new_msgid(at)
    return ChatMessage(sender, "127.0.0.1:1", to, text, at, msgid, sender if logged_in else None)


async def outcome(ask: Callable[[Stored], None]) -> str | None:
    """What the store tells ``done``: None once stored, else why not."""
    return await awaited(ask, 10)


async def save(store: Store, *accounts: Account) -> None:
    for each in accounts:
        assert await outcome(partial(store.save_account, each)) is None


async def mail(store: Store, key: str, *messages: ChatMessage) -> None:
    for each in messages:
        assert await outcome(partial(store.add_mail, key, each)) is None


async def conversation(
    store: Store, pair: str, limit: int = 100, before: str | None = None
) -> Page:
    page: Page | str = await awaited(partial(store.conversation, pair, limit, before), 10)
    assert isinstance(page, Page), page
    return page


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return count


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store that keeps conversations: the SQLite file and --db none."""
    made: Store
    if request.param == "sqlite":
        made = sqlite_store(tmp_path / "imkit.db", Clock(T0))
    else:
        made = MemoryStore(clock=Clock(T0))
    yield made
    await made.close()


both = pytest.mark.parametrize("store", ["sqlite", "memory"], indirect=True)


# ------------------------------------------------------------------- accounts


async def test_accounts_survive_a_restart_and_a_new_password_replaces_the_old(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    alex, sam = account("Alex"), account("sam", last_login=T0 + 5, muted=True)
    store = sqlite_store(path, clock)
    await save(store, alex, sam)
    assert store.accounts == {ALEX: alex, SAM: sam}  # by name key; the name keeps its case
    await store.close()

    again = sqlite_store(path, clock)
    try:
        assert again.accounts == {ALEX: alex, SAM: sam}
        renewed = alex.with_password(hash_password("another", cost=1))
        await save(again, renewed)
        assert again.accounts[ALEX] == renewed
    finally:
        await again.close()
    third = sqlite_store(path, clock)
    try:
        assert third.accounts == {ALEX: renewed, SAM: sam}
        assert rows(path, "accounts") == 2  # replaced, not added
    finally:
        await third.close()


async def test_an_account_that_cannot_be_stored_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "imkit.db"
    store = sqlite_store(path, Clock(T0))
    try:
        path.rename(tmp_path / "elsewhere.db")  # SQLite would go on writing to it
        problem = await outcome(lambda done: store.save_account(account("alex"), done))
        assert problem is not None and "was removed" in problem
        assert store.accounts == {}  # a restart would not know it: neither does the hub
    finally:
        (tmp_path / "elsewhere.db").rename(path)
        await store.close()


async def test_removing_an_account_discards_its_mail_and_conversations(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    await save(store, account("Alex"), account("sam"), account("kim"))
    await mail(store, ALEX, private(store, "sam", "Alex", "while you were out"))
    await mail(store, SAM, private(store, "Alex", "sam", "for sam"))
    await mail(store, SAM, private(store, "guest", "sam", "from a guest", logged_in=False))
    await append_all(store, [private(store, "sam", "kim", "sam and kim")])  # no pair: not kept
    store.append(private(store, "Alex", "sam", "alex and sam"), None, ALEX_SAM)
    store.append(private(store, "kim", "sam", "kim and sam"), None, conversation_key(KIM, SAM))
    assert await outcome(lambda done: store.delete_account(ALEX, done)) is None
    assert ALEX not in store.accounts and ALEX not in store.mailboxes
    # A new Alex is someone else: the old one's conversations are not theirs to read.
    assert (await conversation(store, ALEX_SAM)).messages == ()
    await store.close()

    again = sqlite_store(path, clock)
    try:
        assert set(again.accounts) == {SAM, KIM}
        # What Alex sent that still waited went with the account (issue 25, item 7).
        assert [m.text for m in deliver_all(again, SAM)] == ["from a guest"]
        assert ALEX not in again.mailboxes
        kept = await conversation(again, conversation_key(SAM, KIM))
        assert [m.text for m in kept.messages] == ["kim and sam"]
    finally:
        await again.close()


async def test_mail_for_an_account_removed_meanwhile_is_refused(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "imkit.db", Clock(T0))
    try:
        await save(store, account("Alex"))
        # The hub saw the account, but its removal was queued first.
        removed: list[str | None] = []
        store.delete_account(ALEX, removed.append)
        problem = await outcome(
            lambda done: store.add_mail(ALEX, private(store, "sam", "Alex", "late"), done)
        )
        assert removed == [None]
        assert problem is not None and "removed" in problem
        assert store.mailboxes.get(ALEX, []) == []
        assert rows(store.path, "mailbox") == 0
    finally:
        await store.close()


# --------------------------------------------------------------- waiting mail


def deliver_all(store: Store, key: str) -> list[ChatMessage]:
    """What a login does when its client reads everything: each waiting message
    delivered, and so out of the mailbox."""
    waiting = store.mail_for(key)
    for kept in waiting:
        store.mail_delivered(key, kept)
    return waiting


async def test_mail_stays_in_the_mailbox_until_it_is_delivered(tmp_path: Path) -> None:
    # A login hands the messages to its client; only those written to the socket
    # leave the mailbox: the rest are there for the next login, after a restart too.
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    await save(store, account("Alex"))
    waiting = [private(store, "sam", "Alex", f"m{n}") for n in range(3)]
    await mail(store, ALEX, *waiting)
    assert store.mail_for(ALEX) == waiting
    assert store.mail_for(ALEX) == waiting  # looking takes nothing
    store.mail_delivered(ALEX, waiting[0])
    assert store.mail_for(ALEX) == waiting[1:] and store.waiting(ALEX) == 2
    await store.close()
    again = sqlite_store(path, clock)
    try:
        assert again.mail_for(ALEX) == waiting[1:]
        assert rows(path, "mailbox") == 2
    finally:
        await again.close()


async def test_mail_waits_across_a_restart_in_order_and_is_taken_once(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock)
    await save(store, account("Alex"))
    waiting = [
        private(store, "sam", "Alex", "first"),
        private(store, "guest", "Alex", "second", logged_in=False),
        private(store, "kim", "Alex", "third"),
    ]
    await mail(store, ALEX, *waiting)
    assert store.mailboxes[ALEX] == waiting and store.waiting(ALEX) == 3
    await store.close()

    clock.now = T0 - 3600  # the clock went back: the ids given to mail are not given again
    again = sqlite_store(path, clock)
    try:
        assert again.mailboxes == {ALEX: waiting}  # times, msgids and accounts as sent
        later = again.new_msgid(clock.now)
        assert all(later > (m.msgid or "") for m in waiting)
        assert deliver_all(again, ALEX) == waiting  # oldest first
        assert deliver_all(again, ALEX) == [] and again.waiting(ALEX) == 0
    finally:
        await again.close()
    third = sqlite_store(path, clock)
    try:
        assert third.mailboxes == {} and deliver_all(third, ALEX) == []
        assert rows(path, "mailbox") == 0
    finally:
        await third.close()


async def test_mail_that_cannot_be_stored_is_taken_back_and_the_sender_told(
    tmp_path: Path,
) -> None:
    path = tmp_path / "imkit.db"
    store = sqlite_store(path, Clock(T0))
    try:
        await save(store, account("Alex"))
        kept = private(store, "sam", "Alex", "kept")
        await mail(store, ALEX, kept)
        path.rename(tmp_path / "elsewhere.db")
        outcomes: list[str | None] = []
        store.add_mail(ALEX, private(store, "sam", "Alex", "lost"), outcomes.append)
        assert store.waiting(ALEX) == 2  # counted at once, for the limit
        await store.flush(10)
        [problem] = outcomes
        assert problem is not None and "was removed" in problem
        assert store.mailboxes[ALEX] == [kept]
    finally:
        (tmp_path / "elsewhere.db").rename(path)
        await store.close()


async def test_mail_that_cannot_be_removed_after_delivery_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "imkit.db"
    store = sqlite_store(path, Clock(T0))
    try:
        await save(store, account("Alex"))
        await mail(store, ALEX, private(store, "sam", "Alex", "hello"))
        path.rename(tmp_path / "elsewhere.db")
        assert [m.text for m in deliver_all(store, ALEX)] == ["hello"]  # delivered all the same
        await store.flush(10)
        [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert getattr(record, "event", None) == "mailbox_delete_failed"
    finally:
        (tmp_path / "elsewhere.db").rename(path)
        await store.close()


async def test_expired_mail_is_neither_delivered_nor_counted(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, offline_days=2, purge_interval=0.05)
    try:
        await save(store, account("Alex"), account("sam"))
        await mail(store, ALEX, private(store, "sam", "Alex", "old"))
        await mail(store, SAM, private(store, "Alex", "sam", "old too"))
        clock.now = T0 + 3 * DAY
        assert store.waiting(ALEX) == 0  # the limit counts only what can be delivered
        fresh = private(store, "sam", "Alex", "fresh", at=clock.now)
        await mail(store, ALEX, fresh)
        assert store.mailboxes[ALEX] == [fresh]  # the expired one is dropped from memory
        assert deliver_all(store, ALEX) == [fresh]
        assert deliver_all(store, SAM) == []
        with anyio.fail_after(10):  # and deleted from the file in the background
            while rows(path, "mailbox"):
                await anyio.sleep(0.05)
    finally:
        await store.close()


async def test_expired_mail_is_not_read_at_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, offline_days=2)
    await save(store, account("Alex"))
    await mail(store, ALEX, private(store, "sam", "Alex", "old"))
    await mail(store, ALEX, private(store, "sam", "Alex", "young", at=T0 + 2 * DAY))
    await store.close()
    clock.now = T0 + 3 * DAY
    again = sqlite_store(path, clock, offline_days=2)
    try:
        assert [m.text for m in again.mailboxes[ALEX]] == ["young"]
    finally:
        await again.close()


async def test_mail_is_kept_forever_with_offline_days_0() -> None:
    clock = Clock(T0)
    store = MemoryStore(clock=clock, offline_days=0)
    await save(store, account("Alex"))
    await mail(store, ALEX, private(store, "sam", "Alex", "patience"))
    clock.now = T0 + 3650 * DAY
    assert store.waiting(ALEX) == 1
    assert [m.text for m in deliver_all(store, ALEX)] == ["patience"]


# --------------------------------------------------------------- conversations


@both
async def test_a_conversation_is_its_two_accounts_only(store: Store) -> None:
    pairs = [("Alex", "sam"), ("sam", "Alex")] * 5
    said = [private(store, a, b, f"m{i}", at=T0 + i) for i, (a, b) in enumerate(pairs)]
    public = replace(message(store, "to everyone", T0 + 20), account="Alex")
    public = replace(public, room=store.lobby, lobby=True)  # the lobby's, as the hub says
    for each in said:
        store.append(each, None, ALEX_SAM)  # both directions: one conversation
    store.append(private(store, "Alex", "kim", "to kim"), None, ALEX_KIM)
    assert await append_all(store, [public]) == [None]
    # A guest's private message is not kept, but still answered.
    guest = private(store, "guest", "sam", "not kept", logged_in=False)
    assert await outcome(lambda done: store.append(guest, done)) is None

    page = await conversation(store, ALEX_SAM)
    assert page == Page(tuple(said), False)  # the sender's account comes back too
    assert [m.text for m in (await conversation(store, ALEX_KIM)).messages] == ["to kim"]
    assert (await history(store)).messages == (public,)  # public only, with its account
    assert (await conversation(store, conversation_key(SAM, KIM))).messages == ()

    newest = await conversation(store, ALEX_SAM, 4)
    assert [m.text for m in newest.messages] == ["m6", "m7", "m8", "m9"] and newest.more
    older = await conversation(store, ALEX_SAM, 4, newest.messages[0].msgid)
    assert [m.text for m in older.messages] == ["m2", "m3", "m4", "m5"] and older.more
    oldest = await conversation(store, ALEX_SAM, 4, older.messages[0].msgid)
    assert [m.text for m in oldest.messages] == ["m0", "m1"] and not oldest.more


async def test_conversations_survive_a_restart_and_expire_with_history(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    store = sqlite_store(path, clock, retain_days=30, purge_interval=0.05)
    old = private(store, "Alex", "sam", "old", at=T0 - 31 * DAY)
    young = private(store, "sam", "Alex", "young", at=T0 - DAY)
    for each in (old, young):
        assert await outcome(partial(store.append, each, conversation=ALEX_SAM)) is None
    assert (await conversation(store, ALEX_SAM)).messages == (young,)  # at once
    with anyio.fail_after(10):  # and deleted in the background, as history is
        while rows(path, "messages") > 1:
            await anyio.sleep(0.05)
    await store.close()
    again = sqlite_store(path, clock)
    try:
        assert (await conversation(again, ALEX_SAM)).messages == (young,)
        assert again.recent(5) == ()  # replay is public only
    finally:
        await again.close()


async def test_memory_store_forgets_the_conversations_of_a_removed_account() -> None:
    store = MemoryStore(clock=Clock(T0))
    await save(store, account("Alex"), account("sam"))
    store.append(private(store, "Alex", "sam", "hi"), None, ALEX_SAM)
    await mail(store, ALEX, private(store, "sam", "Alex", "waiting"))
    assert await outcome(lambda done: store.delete_account(ALEX, done)) is None
    assert store.accounts.keys() == {SAM} and store.mailboxes == {}
    assert (await conversation(store, ALEX_SAM)).messages == ()


# ------------------------------------------------------------------ migration


async def test_a_schema_3_file_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as db:  # a file written by the imkit of schema 3
        for version in (1, 2, 3):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
        db.execute(
            "INSERT INTO messages (id, time, sender, addr, recipient, text)"
            f" VALUES (1799999999000000, {T0 - 1}, 'alex', '127.0.0.1:50312', NULL, 'hi')"
        )
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=3")
    assert SCHEMA_VERSION == 8  # 4: accounts, 5: rooms, 6: hooks, 7: edited, 8: search
    store = SqliteStore(path, clock=Clock(T0))
    store.open()
    store.start()
    try:
        [kept] = (await history(store)).messages
        assert (kept.text, kept.account, kept.msgid) == ("hi", None, "1799999999000000")
        await save(store, account("Alex"))
        store.append(private(store, "Alex", "sam", "hi sam"), None, ALEX_SAM)
        assert [m.text for m in (await conversation(store, ALEX_SAM)).messages] == ["hi sam"]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # A page of a conversation is found through its index, not by reading every row.
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE conversation = ? AND id < ? "
            "AND id >= ? ORDER BY id DESC LIMIT 10",
            (ALEX_SAM, 1 << 62, 0),
        ).fetchall()
        assert any("messages_conversation" in row[-1] for row in plan), plan
