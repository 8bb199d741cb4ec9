"""History over the wire, against a real SQLite file: msgids, paging, ``history|N``,
``--replay``, restarts, ``kill -9`` of a loaded server, and a store that stops writing.

Here the tests that need an in-process server on loopback; the others are in
process/test_history.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from imkit.server import ServerConfig
from tests.support import (
    LineClient,
    joined,
    json_client,
    run_server,
)

PAST = re.compile(r"^past \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[")


def config(tmp_path: Path, **options: Any) -> ServerConfig:
    return ServerConfig(port=0, idle_timeout=0, rate=0, db=str(tmp_path / "imkit.db"), **options)


async def test_live_and_stored_copies_agree_and_page_backwards(tmp_path: Path) -> None:
    async with run_server(config(tmp_path)) as server:
        address = server.addresses[0]
        watcher = await json_client(address, "watcher")
        talker = await joined(address, "talker")
        for i in range(250):
            await talker.send(f"line {i}\n")
        live = [await watcher.json_of_type("message") for _ in range(250)]
        assert [m["text"] for m in live] == [f"line {i}" for i in range(250)]
        msgids = [m["msgid"] for m in live]
        assert msgids == sorted(set(msgids)) and all(len(i) == 16 for i in msgids)

        sizes: list[int] = []
        mores: list[bool] = []
        pages: list[dict[str, Any]] = []
        before = None
        for _ in range(3):
            request: dict[str, Any] = {"type": "history", "limit": 100}
            if before:
                request["before"] = before
            page = await watcher.request(**request)
            sizes.append(len(page["messages"]))
            mores.append(page["more"])
            pages[:0] = page["messages"]
            before = page["messages"][0]["msgid"]
        assert sizes == [100, 100, 50] and mores == [True, True, False]
        assert pages == live  # msgid, time, names: the same as they were live

        default = await watcher.request(type="history")
        assert len(default["messages"]) == 50 and default["messages"] == live[-50:]


async def test_text_mode_history_command(tmp_path: Path) -> None:
    async with run_server(config(tmp_path)) as server:
        address = server.addresses[0]
        alex = await joined(address, "alex")
        sam = await joined(address, "sam")
        for text in ["one", "two", "three"]:
            await alex.send(f"{text}\n")
            await sam.line_matching(text)
        await alex.line_matching("alex:three")
        await sam.send("history|2\n")
        two = await sam.lines(2)
        assert all(PAST.match(line) for line in two), two
        assert [line.split("]", 1)[1] for line in two] == ["alex:two\n", "alex:three\n"]
        assert two[0].startswith("past ") and f"[{alex.addr}]alex:two" in two[0]

        for bad in [
            "history|",
            "history|0",
            "history|101",
            "history|2x",
            "history|-1",
            "history|٣",
        ]:
            await sam.send(f"{bad}\n")
            assert (await sam.line()).startswith("error: use history|N with N from 1 to 100")
        assert await alex.silent()  # never broadcast
        await sam.send("history\n")  # a bare word stays a message, as in the seed
        assert await alex.line() == f"[{sam.addr}]sam:history\n"


async def test_replay_on_connect_comes_after_the_join_line(tmp_path: Path) -> None:
    async with run_server(config(tmp_path, replay=2)) as server:
        address = server.addresses[0]
        alex = await LineClient.connect(address)
        assert await alex.line() == f"[{alex.addr}]{alex.addr}:user is online\n"
        assert await alex.silent()  # nothing to replay yet
        for text in ["a", "b", "c"]:
            await alex.send(f"{text}\n")
        await alex.lines(3)
        late = await LineClient.connect(address)
        assert await late.line() == f"[{late.addr}]{late.addr}:user is online\n"
        replayed = await late.lines(2)
        assert [PAST.match(line) is not None for line in replayed] == [True, True]
        assert [line.rsplit(":", 1)[1] for line in replayed] == ["b\n", "c\n"]
        await alex.send("d\n")
        assert await late.line() == f"[{alex.addr}]{alex.addr}:d\n"  # then live


async def test_json_history_request_errors(tmp_path: Path) -> None:
    async with run_server(config(tmp_path)) as server:
        client = await json_client(server.addresses[0])
        cases: list[dict[str, Any]] = [
            {"limit": 0},
            {"limit": 101},
            {"limit": "5"},
            {"limit": True},
            {"limit": 2.5},
            {"before": "abc"},
            {"before": 12},
            {"before": "1" * 17},
        ]
        for fields in cases:
            reply = await client.request(type="history", **fields)
            assert reply["type"] == "error" and reply["code"] == "bad_request", (fields, reply)
        # A well-formed msgid that names nothing kept is a boundary all the same.
        reply = await client.request(type="history", before="0000000000000001")
        assert reply == {"type": "history", "id": reply["id"], "messages": [], "more": False}
