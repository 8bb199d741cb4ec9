"""Deleting and editing a message (docs/integrations.md, "Delete and edit"), pure and
against real SQLite files: the requests parsed in either mode, the events rendered, and
the store's one path for a changed text (find_message, amend_message) on both stores,
across a reopen."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from imkit.client.chat import describe
from imkit.irc.redaction import render_amended
from imkit.protocol import ChatMessage, HistoryPage, Invalid, ServerConnection, decode_event
from imkit.protocol.edits import DeleteMessage, EditMessage, MessageDeleted, MessageEdited
from imkit.protocol.events import encode_json
from imkit.protocol.parsing import parse_json_request, parse_text
from imkit.store import MemoryStore, Store
from imkit.store.base import MESSAGE_GONE, awaited
from tests.support import Clock
from tests.support.store import T0, append_all, sqlite_store
from tests.unit.test_client_rooms import client_in

M = "1800000000000001"


def test_text_lines_parse() -> None:
    assert parse_text(f"delete|{M}") == DeleteMessage(msgid=M)
    assert parse_text(f"edit|{M}|new|text") == EditMessage(msgid=M, text="new|text")
    for bad, code in [
        ("delete|", "bad_request"),
        ("delete|12", "bad_request"),
        (f"delete|{M}|x", "bad_request"),
        (f"edit|{M}", "bad_request"),
        ("edit|x|y", "bad_request"),
        (f"edit|{M}|", "invalid_message"),
    ]:
        command = parse_text(bad)
        assert isinstance(command, Invalid) and command.code == code, bad


def test_json_requests_parse() -> None:
    assert parse_json_request({"type": "delete", "id": 1, "msgid": M}) == DeleteMessage(
        id=1, msgid=M
    )
    edit = parse_json_request({"type": "edit", "id": "e", "msgid": M, "text": "t"})
    assert edit == EditMessage(id="e", msgid=M, text="t")
    where = {"type": "delete", "msgid": M, "room": "#Dev", "reason": "spam"}
    assert parse_json_request(where) == DeleteMessage(msgid=M, room="#Dev", reason="spam")
    cases: list[tuple[dict[str, object], str]] = [
        ({"type": "delete", "msgid": M, "room": "dev"}, "bad_room_name"),
        ({"type": "delete", "msgid": M, "reason": 5}, "bad_request"),
        ({"type": "delete"}, "bad_request"),
        ({"type": "delete", "msgid": 5}, "bad_request"),
        ({"type": "edit", "msgid": M}, "bad_request"),
        ({"type": "edit", "msgid": M, "text": ""}, "invalid_message"),
        ({"type": "edit", "msgid": M, "text": "a\rb"}, "invalid_message"),
    ]
    for bad, code in cases:
        command = parse_json_request({"id": 7, **bad})
        assert isinstance(command, Invalid) and command.code == code and command.id == 7, bad


def test_an_edit_longer_than_max_line_is_refused_in_both_modes() -> None:
    wire = ServerConnection(max_line=10)
    [ok] = wire.receive_data(f"edit|{M}|0123456789\n".encode())  # a line past 10 bytes
    assert ok == EditMessage(msgid=M, text="0123456789")
    [long] = wire.receive_data(f"edit|{M}|0123456789X\n".encode())
    assert isinstance(long, Invalid) and long.code == "line_too_long"
    wire = ServerConnection(max_line=10, json=True)
    line = json.dumps({"type": "edit", "id": 1, "msgid": M, "text": "0123456789X"})
    [long] = wire.receive_data(f"{line}\n".encode())
    assert isinstance(long, Invalid) and long.code == "line_too_long" and long.id == 1


def test_events_render_in_both_modes() -> None:
    deleted = MessageDeleted(M, "#dev", "alex")
    assert deleted.text_line() == f"#dev * alex deleted message {M}"
    assert json.loads(encode_json(deleted)) == {
        "type": "deleted",
        "msgid": M,
        "room": "#dev",
        "by": "alex",
    }
    assert MessageDeleted(M, "#lobby", None).text_line() == (
        f"#lobby * an administrator deleted message {M}"
    )
    edited = MessageEdited(M, "#lobby", "alex", "new\ntext", 0.5)
    assert edited.text_line() == f"#lobby * alex edited message {M}: new text"
    fields = json.loads(encode_json(edited))
    assert fields == {
        "type": "edited",
        "msgid": M,
        "room": "#lobby",
        "by": "alex",
        "text": "new\ntext",
        "edited": "1970-01-01T00:00:00.500Z",
    }


def test_an_edited_message_in_history_is_marked() -> None:
    message = ChatMessage("alex", "a", None, "hi", 0.0, M, None, "#lobby", True, edited=60.0)
    assert message.json_fields()["edited"] == "1970-01-01T00:01:00.000Z"
    assert message.past_line() == "past 1970-01-01T00:00:00Z edited [a]alex:hi"
    plain = ChatMessage("alex", "a", None, "hi", 0.0, M, None, "#dev")
    assert "edited" not in plain.json_fields()
    assert plain.past_line() == "#dev past 1970-01-01T00:00:00Z [a]alex:hi"


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


def _said(store: Store, text: str, at: float, room: str | None = None) -> ChatMessage:
    msgid = store.new_msgid(at)
    if room is None:
        return ChatMessage("alex", "127.0.0.1:1", None, text, at, msgid, "Alex", store.lobby, True)
    return ChatMessage("alex", "127.0.0.1:1", None, text, at, msgid, "Alex", room)


async def test_the_store_finds_edits_and_deletes_public_messages(store: Store) -> None:
    lobby, room = _said(store, "lobby", T0), _said(store, "room", T0 + 1, "#dev")
    await append_all(store, [lobby, room])
    number = int(room.msgid or 0)
    assert await awaited(partial(store.find_message, number), 10) == room
    assert await awaited(partial(store.find_message, number + 1), 10) is None
    assert await awaited(partial(store.amend_message, number, "room!", T0 + 5), 10) is None
    found = await awaited(partial(store.find_message, number), 10)
    assert isinstance(found, ChatMessage) and (found.text, found.edited) == ("room!", T0 + 5)
    page = await awaited(partial(store.history, 10, None, room="#dev"), 10)
    assert not isinstance(page, str) and [m.text for m in page.messages] == ["room!"]
    first = int(lobby.msgid or 0)
    assert await awaited(partial(store.amend_message, first, "lobby!", T0 + 6), 10) is None
    assert [m.text for m in store.recent(10)] == ["lobby!"]  # the replay follows
    assert await awaited(partial(store.amend_message, first, None, T0 + 7), 10) is None
    assert await awaited(partial(store.find_message, first), 10) is None
    assert store.recent(10) == ()
    for text in (None, "too late"):  # deleted meanwhile: said, and nothing comes back
        assert await awaited(partial(store.amend_message, first, text, T0), 10) == MESSAGE_GONE
    assert await awaited(partial(store.find_message, first), 10) is None


async def test_sqlite_keeps_the_edit_and_forgets_the_deleted_text(tmp_path: Path) -> None:
    path = tmp_path / "imkit.db"
    store = sqlite_store(path, Clock(T0), retain_days=30)
    messages = [_said(store, text, T0 + i) for i, text in enumerate(["a secret", "typo"])]
    await append_all(store, messages)
    gone, kept = (int(m.msgid or 0) for m in messages)
    assert await awaited(partial(store.amend_message, gone, None, T0 + 5), 10) is None
    assert await awaited(partial(store.amend_message, kept, "fixed", T0 + 6), 10) is None
    await store.close()
    with sqlite3.connect(path) as db:  # the file itself: no row holds the deleted text
        rows = db.execute("SELECT id, text, edited FROM messages").fetchall()
    assert rows == [(kept, "fixed", T0 + 6)]
    assert _files_hold(tmp_path) == []  # nor any page of the file (secure_delete), nor a -wal
    again = sqlite_store(path, Clock(T0), retain_days=30)
    try:
        [message] = again.recent(10)  # primed from the file
        assert (message.text, message.edited) == ("fixed", T0 + 6)
    finally:
        await again.close()


def _files_hold(folder: Path) -> list[str]:
    """The files of ``folder`` that still hold the old texts' bytes."""
    old = (b"a secret", b"typo")
    return [f.name for f in folder.iterdir() if any(text in f.read_bytes() for text in old)]


def test_the_client_library_decodes_the_events_and_chat_shows_them() -> None:
    deleted = decode_event({"type": "deleted", "msgid": M, "room": "#dev", "by": None})
    assert deleted == MessageDeleted(M, "#dev", None)
    edited = decode_event(json.loads(encode_json(MessageEdited(M, "#dev", "alex", "t", 1.5))))
    assert edited == MessageEdited(M, "#dev", "alex", "t", 1.5)
    shown = describe(deleted, client_in("#dev"))
    assert shown == f"#dev * an administrator deleted message {M}"
    message = ChatMessage("a", "x", None, "t", 1.0, M, None, "#dev", edited=2.0)
    page = decode_event({"type": "history", "id": 1, "messages": [message.json_fields()]})
    assert isinstance(page, HistoryPage) and page.messages == (message,)


def test_an_edit_reaches_irc_as_notices_of_at_most_512_bytes() -> None:
    """IRC has no edit: the new text comes as a NOTICE, split like a long message (a
    text-mode user's lines may be longer than an IRC line)."""
    long = "ü" * 400 + " end"
    event = MessageEdited(M, "#dev", "alex", long, 1.5, by_addr="127.0.0.1:5000")
    lines = render_amended(event, frozenset()).split("\r\n")[:-1]
    assert len(lines) == 2 and all(len((line + "\r\n").encode()) <= 512 for line in lines)
    texts = [line.split(" :", 1)[1] for line in lines]
    assert "".join(texts) == f"edited {M}: {long}"
    assert all(line.startswith(":alex!") and " NOTICE #dev :" in line for line in lines)
