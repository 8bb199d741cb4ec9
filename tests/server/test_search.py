"""Search (docs/integrations.md, "Search") against a real SQLite file, through an
in-process server: the FTS5 index answers JSON and text requests, the client library's
``search``, a restart, and ``imkit history delete`` taking a message out of the index.
The scans (one node in memory, two nodes through Redis) are tests/behaviour/test_search.py."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from imkit.client.library import connect
from imkit.errors import ServerError
from imkit.server import ServerConfig
from tests.support import ask, hostport, joined, json_client, run_server


def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(port=0, idle_timeout=0, rate=0, db=str(tmp_path / "imkit.db"))


async def test_the_index_answers_json_text_and_the_library_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    async with run_server(config(tmp_path)) as server:
        address = server.addresses[0]
        alex = await json_client(address, "alex")
        assert (await alex.request(type="join", room="#ops"))["type"] == "joined"
        sent: list[dict[str, Any]] = []
        for i, (text, room) in enumerate(
            [
                ("deploy failed on web1", None),
                ("deploy ok on web2", None),
                ("Déploy FAILED in ops", "#ops"),
                ("prod-1 deploy failed", None),
            ]
        ):
            request: dict[str, Any] = {"type": "message", "text": text, "id": i}
            if room:
                request["room"] = room
            sent.append(await alex.request(**request))
        found = await alex.request(type="history", query="FAILED deploy", limit=1)
        assert [m["text"] for m in found["messages"]] == ["prod-1 deploy failed"]
        assert found["more"] is True and found["messages"][0]["msgid"] == sent[3]["msgid"]
        ops = await alex.request(type="history", room="#OPS", query="deploy failed")
        assert [m["text"] for m in ops["messages"]] == ["Déploy FAILED in ops"]
        talker = await joined(address, "talker")
        await talker.send("search|web1 deploy\n")
        assert re.fullmatch(r"past \S+ \[\S+\]alex:deploy failed on web1\n", await talker.line())
        async with connect(*hostport(server), name="lib") as client:
            page = await client.search("deploy failed")
            assert [m.text for m in page.messages] == [
                "deploy failed on web1",
                "prod-1 deploy failed",
            ]
            with pytest.raises(ServerError) as outside:
                await client.search("deploy", room="#ops")
            assert outside.value.code == "not_in_room"
            with pytest.raises(ServerError) as refused:
                await client.search("!!")
            assert refused.value.code == "bad_request"
        # imkit history delete: gone from the index too.
        deleted = await ask(server, type="history_delete", msgids=[sent[0]["msgid"]])
        assert deleted["type"] == "ok", deleted
        again = await alex.request(type="history", query="deploy failed")
        assert [m["text"] for m in again["messages"]] == ["prod-1 deploy failed"]
    with contextlib.closing(sqlite3.connect(tmp_path / "imkit.db")) as file:
        file.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        indexed = file.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'web1'")
        assert indexed.fetchone()[0] == 0
    async with run_server(config(tmp_path)) as server:
        reader = await json_client(server.addresses[0], "reader")
        after = await reader.request(type="history", query="deploy")
        assert [m["text"] for m in after["messages"]] == [
            "deploy ok on web2",
            "prod-1 deploy failed",
        ]
        admin = await ask(server, type="history", room="#ops", query="deploy")
        assert [m["text"] for m in admin["messages"]] == ["Déploy FAILED in ops"]
