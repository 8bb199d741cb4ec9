"""History through the clients, against real servers on real SQLite files: the library's
``history()`` and msgids, ``imkit send`` when the store cannot write, ``imkit history``
and ``imkit stats`` through the admin socket, and ``imkit chat`` showing past messages
(piped, and in a real terminal under tmux).

Here the tests that need an in-process server on loopback; the others are in
process/test_history_clients.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from imkit.client import admin as admin_client
from imkit.client.library import ChatMessage, HistoryPage, connect
from imkit.errors import AdminError, ServerError, Unavailable
from imkit.operator import answers
from imkit.server import Server
from tests.support import (
    hostport,
    run_server,
)
from tests.support.history_clients import db_config, socket_of, stored

# ------------------------------------------------------------------------ imkit chat


async def test_history_pages_back_with_before_and_more(tmp_path: Path) -> None:
    async with run_server(db_config(tmp_path)) as server:
        async with (
            connect(*hostport(server), name="alex") as alex,
            connect(*hostport(server), name="sam") as sam,
        ):
            msgids = [await stored(alex, f"line {i}") for i in range(25)]
            assert msgids == sorted(set(msgids))  # unique, and ordered as strings
            private = await alex.send("only for sam", to="sam")
            assert private is not None and private > msgids[-1]

            newest = await sam.history(limit=10)
            assert isinstance(newest, HistoryPage)
            assert [m.text for m in newest.messages] == [f"line {i}" for i in range(15, 25)]
            assert [m.msgid for m in newest.messages] == msgids[15:]
            assert newest.more is True
            assert all(m.sender == "alex" and m.to is None for m in newest.messages)
            assert all(m.addr == alex.addr for m in newest.messages)
            times = [m.time for m in newest.messages]
            assert times == sorted(times) and times[0] > 0

            middle = await sam.history(limit=10, before=newest.messages[0].msgid)
            assert [m.msgid for m in middle.messages] == msgids[5:15]
            assert middle.more is True
            oldest = await sam.history(limit=10, before=middle.messages[0].msgid)
            assert [m.msgid for m in oldest.messages] == msgids[:5]
            assert oldest.more is False
            everything = await sam.history()  # 50 by default: all 25, no private one
            assert [m.msgid for m in everything.messages] == msgids
            assert everything.more is False

            # The live copy of a message carries the msgid its sender's ok gave.
            events = sam.events()
            sent = await stored(alex, "live")
            event = await anext(events)
            while not (isinstance(event, ChatMessage) and event.text == "live"):
                event = await anext(events)
            assert event.msgid == sent

            for bad in [{"limit": 0}, {"limit": 101}, {"before": "yesterday"}]:
                with pytest.raises(ServerError) as raised:
                    await sam.history(**bad)  # type: ignore[arg-type]
                assert raised.value.code == "bad_request"
            assert len((await sam.history(limit=1)).messages) == 1  # still connected

    # Another server on the same file: the same messages, the same ids.
    async with run_server(db_config(tmp_path)) as server:
        async with connect(*hostport(server)) as reader:
            again = await reader.history(limit=100)
            assert [m.msgid for m in again.messages] == [*msgids, sent]
            assert [m.text for m in again.messages][-2:] == ["line 24", "live"]


async def test_an_unreadable_line_is_answered_while_a_message_waits_for_the_store(
    db_server: Server,
) -> None:
    # The ok of a public message waits for its commit, so an error without an id (a line
    # the server could not read) arrives first: it must go to the long line, not to the
    # older message.
    async with connect(*hostport(db_server), name="alex") as alex:
        results: dict[str, object] = {}

        async def message() -> None:
            results["message"] = await alex.send("kept")

        async def too_long() -> None:
            with pytest.raises(ServerError) as raised:
                await alex.send("x" * 20_000)  # past the JSON line limit (13,312 bytes)
            results["too_long"] = raised.value.code

        async with anyio.create_task_group() as tg:
            tg.start_soon(message)  # tasks start, and so send, in this order
            tg.start_soon(too_long)
        assert results["too_long"] == "line_too_long"
        assert isinstance(results["message"], str)
        page = await alex.history(limit=5)
        assert [(m.text, m.msgid) for m in page.messages] == [("kept", results["message"])]


async def test_send_raises_unavailable_once_the_file_is_removed(db_server: Server) -> None:
    async with (
        connect(*hostport(db_server), name="alex") as alex,
        connect(*hostport(db_server), name="watcher") as watcher,
    ):
        events = watcher.events()
        assert await alex.send("stored") is not None
        os.remove(db_server.config.db or "")
        # The store finds the file gone before its next batch: that message was
        # delivered already, and must not be sent again.
        with pytest.raises(Unavailable) as raised:
            await alex.send("delivered, not stored")
        assert raised.value.code == "unavailable" and raised.value.delivered is True
        assert "was removed" in str(raised.value)
        # From then on a public message is refused before anyone sees it.
        with pytest.raises(Unavailable) as refused:
            await alex.send("refused")
        assert refused.value.delivered is False
        assert str(refused.value).startswith("the message was not sent: ")
        assert await alex.send("private still works", to="watcher") is not None

        texts: list[str] = []
        while len(texts) < 3:
            event = await anext(events)
            if isinstance(event, ChatMessage):
                texts.append(event.text)
        assert texts == ["stored", "delivered, not stored", "private still works"]

    counters = answers.stats(db_server)
    assert counters["refused_unavailable"] == 1
    assert counters["store_problem"] == f"the database file {db_server.config.db} was removed"


async def test_admin_history_requests_are_checked(db_server: Server) -> None:
    path = Path(socket_of(db_server))
    bad_requests: list[dict[str, Any]] = [
        {"type": "history", "limit": 0},
        {"type": "history", "limit": "5"},
        {"type": "history", "limit": True},
        {"type": "history", "before": "not a msgid"},
    ]
    for bad in bad_requests:
        with pytest.raises(AdminError, match="history"):
            await admin_client.request(path, bad)
    empty = await admin_client.request(path, {"type": "history"})
    assert empty == {"type": "history", "messages": [], "more": False}
    # The other requests still answer, also on a connection that asked for history.
    stream = await anyio.connect_unix(path)
    async with stream:
        await stream.send(b'{"type":"history","limit":1}\n{"type":"stats"}\n')
        replies = b""
        with anyio.fail_after(10):
            while replies.count(b"\n") < 2:
                replies += await stream.receive()
    assert [json.loads(line)["type"] for line in replies.splitlines()] == ["history", "stats"]
