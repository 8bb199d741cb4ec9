"""Rooms' messages in the SQLite file over real TCP (issue 28): a room message's ``ok``
means stored, across a kill -9, and the room's history has it after the restart while
the lobby's does not.

Here the test that runs imkit subprocesses; the store's own tests of rooms are in
unit/test_store_rooms.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support import json_client, start_server_process


async def test_a_rooms_messages_are_kept_across_kill_9(tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "chat.db"), "--rate", "0"]
    first = start_server_process(*args)
    try:
        sender = await json_client(first.address, "bot")
        assert (await sender.request(type="join", room="#Builds"))["type"] == "joined"
        msgids = []
        for n in range(3):
            reply = await sender.request(type="message", room="#builds", text=f"kept {n}")
            assert reply["type"] == "ok", reply
            msgids.append(reply["msgid"])  # ok: stored
        lobby = await sender.request(type="message", text="in the lobby")
        assert lobby["type"] == "ok", lobby
        await sender.aclose()
    finally:
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    second = start_server_process(*args)
    try:
        reader = await json_client(second.address, "reader")
        assert (await reader.request(type="join", room="#BUILDS"))["type"] == "joined"
        page = await reader.request(type="history", room="#builds", limit=10)
        assert [m["msgid"] for m in page["messages"]] == msgids, page
        assert [m["text"] for m in page["messages"]] == ["kept 0", "kept 1", "kept 2"]
        assert {m["room"] for m in page["messages"]} == {"#Builds"}  # as it was made
        lobby_page = await reader.request(type="history", limit=10)
        assert [m["text"] for m in lobby_page["messages"]] == ["in the lobby"], lobby_page
        assert lobby_page["messages"][0]["room"] == "#lobby"
        await reader.aclose()
    finally:
        second.proc.terminate()
        second.proc.wait()
