"""Search (docs/integrations.md, "Search"): the word rule, the SQLite index against real
files (kept in step with inserts, deletes, retention, edits; built by the migration),
the memory store's scan finding the same, and the requests' parsing."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imkit.errors import ServeError
from imkit.protocol import BAD_REQUEST, BAD_ROOM_NAME, ChatMessage, History, Invalid
from imkit.protocol.parsing import parse_json_request, parse_text
from imkit.rules.accounts import conversation_key
from imkit.rules.search import QueryError, fts_query, matches, query_words, text_tokens
from imkit.store import MemoryStore, SqliteStore, Store
from imkit.store.schema import MIGRATIONS, _require_fts5
from tests.support import Clock
from tests.support.store import DAY, T0, append_all, search, sqlite_store

# A corpus where the rule's edges show: case, diacritics, punctuation inside words,
# FTS5's own operators as plain words, prefixes that must not match.
TEXTS = [
    "Deploy FAILED on prod-1",
    "deploy ok on prod-2",
    "the deployment failed again",
    "Café crème at 10:30",
    "cafe near the NEAR(operator) and AND or OR",
    'quotes "deploy" and stars deploy*',
    "prod 1 is down",
    "1 prod is up",
    "日本語 テキスト deploy",
    "column: text: scope: l",
]
QUERIES = [
    "deploy",
    "DEPLOY failed",
    "failed deploy",
    "prod-1",
    "prod 1",
    "cafe",
    "CAFÉ crème",
    "near(operator)",
    "AND",
    "OR",
    'deploy"',
    "deploy*",
    "deploy -- failed",
    "日本語",
    "text:",
    "l",
    "deployment",
    "scope",
]


def lobby(store: Store, text: str, at: float) -> ChatMessage:
    msgid = store.new_msgid(at)
    return ChatMessage("alex", "127.0.0.1:1", None, text, at, msgid, room=store.lobby, lobby=True)


def in_room(store: Store, room: str, text: str, at: float) -> ChatMessage:
    return ChatMessage("alex", "127.0.0.1:1", None, text, at, store.new_msgid(at), room=room)


@contextlib.asynccontextmanager
async def opened(path: Path, clock: Clock | None = None, **options: float):  # type: ignore[no-untyped-def]
    store = sqlite_store(path, clock or Clock(T0), **options)
    try:
        yield store
    finally:
        await store.close()


def fts_rows(path: Path, query: str) -> list[int]:
    """The rowids the index holds for ``query`` (read beside the server, as an operator's
    sqlite3 shell would)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (query,)
        )
        return [row[0] for row in rows]


def integrity(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


# ------------------------------------------------------------------- the rule


def test_words_are_literal_tokens_without_case_or_diacritics() -> None:
    assert query_words("Deploy  FAILED") == (("deploy",), ("failed",))
    assert query_words("prod-1 Café") == (("prod", "1"), ("cafe",))
    assert query_words('NEAR(a b) "x" y* -- col:') == (
        ("near", "a"),
        ("b",),
        ("x",),
        ("y",),
        ("col",),
    )
    assert text_tokens("Crème brûlée, 日本語!") == ["creme", "brulee", "日本語"]
    assert matches("Deploy FAILED on prod-1", query_words("failed deploy"))
    assert not matches("the deployment failed", query_words("deploy"))  # whole tokens
    assert matches("prod 1 down", query_words("prod-1"))  # a phrase: in a row
    assert not matches("1 prod down", query_words("prod-1"))
    for empty in ["", "   ", "-- !! ..."]:
        with pytest.raises(QueryError):
            query_words(empty)
    with pytest.raises(QueryError):
        query_words("w " * 17)
    with pytest.raises(QueryError):
        query_words("x" * 201)


async def test_the_index_and_the_scan_find_the_same_messages(tmp_path: Path) -> None:
    memory = MemoryStore(clock=Clock(T0))
    async with opened(tmp_path / "imkit.db") as store:
        for each in (memory, store):
            await append_all(each, [lobby(each, t, T0 + i) for i, t in enumerate(TEXTS)])
        for query in QUERIES:
            found = [m.text for m in (await search(store, query)).messages]
            assert found == [m.text for m in (await search(memory, query)).messages], query
            assert found == [t for t in TEXTS if matches(t, query_words(query))], query
        # Spot checks that the rule is the one documented, not merely consistent.
        assert [m.text for m in (await search(store, "prod-1")).messages] == [
            "Deploy FAILED on prod-1",
            "prod 1 is down",
        ]
        assert len((await search(store, "deploy")).messages) == 4
        assert [m.text for m in (await search(store, "AND")).messages] == [TEXTS[4], TEXTS[5]]


# ------------------------------------------------------------- SQLite: the index


async def test_search_keeps_to_its_room_and_never_private_messages(tmp_path: Path) -> None:
    async with opened(tmp_path / "imkit.db") as store:
        sent = [
            lobby(store, "deploy failed in the lobby", T0),
            in_room(store, "#Ops", "deploy failed in ops", T0 + 1),
            in_room(store, "#dev", "deploy failed in dev", T0 + 2),
        ]
        await append_all(store, sent)
        private = ChatMessage("alex", "a", "sam", "deploy failed privately", T0 + 3)
        private = replace(private, msgid=store.new_msgid(T0 + 3), account="alex")
        done: list[str | None] = []
        store.append(private, done.append, conversation=conversation_key("alex", "sam"))
        await store.flush(5)
        assert done == [None]
        assert [m.text for m in (await search(store, "deploy")).messages] == [sent[0].text]
        ops = await search(store, "failed", room="#ops")
        assert [(m.text, m.room) for m in ops.messages] == [(sent[1].text, "#Ops")]
        assert [m.text for m in (await search(store, "dev", room="#dev")).messages] == [
            sent[2].text
        ]
        assert (await search(store, "privately")).messages == ()
        assert (await search(store, "lobby", room="#ops")).messages == ()
        assert (await search(store, "deploy", room="#nowhere")).messages == ()


async def test_pages_go_back_newest_first_and_say_when_there_is_more(tmp_path: Path) -> None:
    async with opened(tmp_path / "imkit.db") as store:
        sent = [lobby(store, f"build {i} {'red' if i % 3 else 'green'}", T0 + i) for i in range(90)]
        await append_all(store, sent)
        green = [m for m in sent if "green" in m.text]  # 30 of them
        first = await search(store, "green build", limit=20)
        assert first.messages == tuple(green[-20:]) and first.more  # the newest, oldest first
        rest = await search(store, "green build", limit=20, before=first.messages[0].msgid)
        assert rest.messages == tuple(green[:10]) and not rest.more


async def test_a_sparse_room_is_found_past_many_matches_elsewhere(tmp_path: Path) -> None:
    """The first step reads the newest matches of the words (200 here); the room's older
    ones come from the second, through the room's scope."""
    async with opened(tmp_path / "imkit.db") as store:
        sent = [in_room(store, "#quiet", f"alpha quiet {i}", T0 + i) for i in range(3)]
        for i in range(250):
            sent.append(lobby(store, f"alpha loud {i}", T0 + 10 + i))
            if i == 160:  # among the 200 newest matches: found by the first step
                sent.append(in_room(store, "#quiet", "alpha quiet late", T0 + 10 + i))
        await append_all(store, sent)
        page = await search(store, "alpha", limit=2, room="#quiet")
        assert [m.text for m in page.messages] == ["alpha quiet 2", "alpha quiet late"]
        assert page.more
        rest = await search(store, "alpha", limit=5, room="#quiet", before=page.messages[0].msgid)
        assert [m.text for m in rest.messages] == ["alpha quiet 0", "alpha quiet 1"]
        assert not rest.more
        newest = await search(store, "alpha", limit=3)
        assert [m.text for m in newest.messages] == [f"alpha loud {i}" for i in (247, 248, 249)]


async def test_the_index_follows_deletes_retention_and_edits(tmp_path: Path) -> None:
    path, clock = tmp_path / "imkit.db", Clock(T0)
    async with opened(path, clock, retain_days=30, purge_interval=0.05) as store:
        old = [lobby(store, f"ancient deploy {i}", T0 - 40 * DAY + i) for i in range(700)]
        young = [lobby(store, f"young deploy {i}", T0 - DAY + i) for i in range(3)]
        await append_all(store, old + young)
        # Retention hides them at once, then deletes them: from the index too.
        assert [m.text for m in (await search(store, "deploy")).messages] == [m.text for m in young]
        with anyio.fail_after(10):
            while fts_rows(path, "ancient"):
                await anyio.sleep(0.05)
        # imkit history delete.
        deleted: list[list[tuple[int, str | None]] | str] = []
        store.delete_messages([int(young[0].msgid or 0)], None, 0, deleted.append)
        await store.flush(5)
        assert deleted == [[(int(young[0].msgid or 0), None)]]
        assert [m.text for m in (await search(store, "young")).messages] == [
            m.text for m in young[1:]
        ]
        # An edit, or a deletion that blanks the text, is an UPDATE of messages: the
        # triggers follow it, whoever writes it.
        number = int(young[1].msgid or 0)
        changed: list[str | None] = []
        edit = "UPDATE messages SET text = 'rewritten rollback' WHERE id = ?"
        store._change(lambda c: c.execute(edit, (number,)), changed.append)
        await store.flush(5)
        assert changed == [None]
        assert [m.text for m in (await search(store, "young")).messages] == [young[2].text]
        assert [m.text for m in (await search(store, "rollback")).messages] == [
            "rewritten rollback"
        ]
    integrity(path)
    assert fts_rows(path, "ancient") == [] and fts_rows(path, "young") == [int(young[2].msgid or 0)]


async def test_an_older_file_is_indexed_by_its_migration(tmp_path: Path) -> None:
    path = tmp_path / "imkit.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as old:
        for version in range(1, 6):  # a file as imkit wrote it before search
            for statement in MIGRATIONS[version]:
                old.execute(statement)
        old.execute("PRAGMA application_id=0x696D6B74")
        old.execute("PRAGMA user_version=5")
        rows = [
            (1, "in the lobby: disk full", None, None, None),
            (2, "in ops: disk full", None, "#Ops", "#ops"),
            (3, "privately: disk full", "sam", None, None),
        ]
        for number, text, recipient, room, key in rows:
            old.execute(
                "INSERT INTO messages (id, time, sender, addr, recipient, text, room, room_key) "
                "VALUES (?, ?, 'alex', 'a', ?, ?, ?, ?)",
                (number * 1000 + int(T0) * 1000 * 1000, T0, recipient, text, room, key),
            )
    async with opened(path) as store:
        assert [m.text for m in (await search(store, "disk full")).messages] == [rows[0][1]]
        assert [m.text for m in (await search(store, "disk", room="#ops")).messages] == [rows[1][1]]
        assert (await search(store, "privately")).messages == ()
    with contextlib.closing(sqlite3.connect(path)) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
    integrity(path)


class _WithoutFts5:
    """A connection's answer to PRAGMA compile_options as a build without FTS5 gives it
    (this Python's has FTS5, and a build without is not cheap to get)."""

    def execute(self, sql: str) -> list[tuple[str]]:
        assert sql == "PRAGMA compile_options"
        return [("ENABLE_FTS4",), ("THREADSAFE=1",)]


def test_a_sqlite_without_fts5_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="without FTS5.*--db none"):
        _require_fts5(_WithoutFts5(), tmp_path / "imkit.db")  # type: ignore[arg-type]
    with contextlib.closing(sqlite3.connect(":memory:")) as real:
        _require_fts5(real, tmp_path / "imkit.db")  # this build has it: no error


def test_a_store_is_usable_for_search_right_after_open(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "imkit.db", clock=Clock(T0))
    store.open()
    try:
        assert store._connection is not None
        names = {r[0] for r in store._connection.execute("SELECT name FROM sqlite_master")}
        assert {"messages_fts", "messages_public", "messages_fts_insert"} <= names
    finally:
        store._release()


# --------------------------------------------------------------------- requests


def test_json_history_with_a_query_is_a_search() -> None:
    command = parse_json_request(
        {"type": "history", "room": "#ops", "query": "deploy failed", "limit": 5, "id": 7}
    )
    assert command == History(id=7, limit=5, room="#ops", query="deploy failed")
    lobby_search = parse_json_request({"type": "history", "query": "x"})
    assert lobby_search == History(query="x")
    cases: list[tuple[dict[str, object], str]] = [
        ({"query": ""}, "at least one word"),
        ({"query": "  -- "}, "at least one word"),
        ({"query": 3}, "must be a string"),
        ({"query": "x", "with": "sam"}, "not a conversation"),
        ({"query": "x" * 300}, "at most 200"),
    ]
    for bad, why in cases:
        command = parse_json_request({"type": "history", "id": 1, **bad})
        assert isinstance(command, Invalid) and command.code == BAD_REQUEST, bad
        assert why in command.message and command.id == 1


def test_a_text_search_line_is_never_a_message() -> None:
    assert parse_text("search|deploy failed") == History(query="deploy failed")
    assert parse_text("search|#ops|disk") == History(room="#ops", query="disk")
    assert parse_text("search|#ops|a|b") == History(room="#ops", query="a|b")
    for line in ["search|", "search|  ", "search|#ops", "search|#ops|", "search|#ops|--"]:
        command = parse_text(line)
        assert isinstance(command, Invalid) and command.code == BAD_REQUEST, line
    bad_room = parse_text("search|#bad room|x")
    assert isinstance(bad_room, Invalid) and bad_room.code == BAD_ROOM_NAME


# Texts of the scripts people write in (SQLite's tables are Unicode 6.1, Python's newer:
# on code points assigned since, the two may split words differently).
_TEXT = "abcXYZ019 .,;:-_\"'()*+éÉüßøçñÅ日本語テキスト\tµ²"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(_TEXT), max_size=40),
    query=st.text(
        alphabet=st.sampled_from("ab é\"*^:(){}-+ANDORNEAR'.\\_1日"), min_size=1, max_size=30
    )
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
)
def test_any_query_is_literal_for_fts5_and_agrees_with_the_scan(text: str, query: str) -> None:
    """Whatever the user types, the index gets no syntax error, and finds the text exactly
    when the scan does."""
    try:
        words = query_words(query)
    except QueryError:
        return
    with contextlib.closing(sqlite3.connect(":memory:")) as connection:
        connection.execute(
            "CREATE VIRTUAL TABLE t USING fts5(text, scope, "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        connection.execute("INSERT INTO t (rowid, text, scope) VALUES (1, ?, 'l')", (text,))
        found = connection.execute(
            "SELECT rowid FROM t WHERE t MATCH ?", (fts_query(words, "l"),)
        ).fetchall()
    assert bool(found) == matches(text, words), (text, words)
