"""`imkit history --grep WORDS [--room #ROOM]` (docs/integrations.md, "Search"): a real
`imkit serve` on a SQLite file, asked through its admin socket by the `imkit` command.
The requests themselves are tested in server/, behaviour/ and unit/test_search.py."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from tests.support import joined, run_imkit, say, start_server_process


async def test_history_grep_searches_the_lobby_or_a_room(short_dir: Path) -> None:
    db, sock = short_dir / "g.db", short_dir / "g.sock"
    server = start_server_process("--db", str(db), "--admin-socket", str(sock), "--rate", "0")
    try:
        sam = await joined(server.address, "sam")
        await say(sam, "disk full on db1", "all fine", "DISK almost full")
        await sam.send("join|#ops\n")
        await sam.line_matching("you have joined")
        await sam.send("to|#ops|disk full in ops\n")
        await sam.line_matching("disk full in ops")
        # Text mode has no ok; a search is queued behind every message delivered before it.

        def grep(*args: str):  # type: ignore[no-untyped-def]
            return run_imkit("history", "--admin-socket", str(sock), *args)

        shown = await anyio.to_thread.run_sync(grep, "--grep", "full disk")
        assert shown.returncode == 0, shown.stderr
        lines = [line.split("]", 1)[1] for line in shown.stdout.splitlines()]
        assert lines == ["sam:disk full on db1", "sam:DISK almost full"]
        in_room = await anyio.to_thread.run_sync(grep, "--grep", "disk", "--room", "#OPS", "--json")
        assert in_room.returncode == 0, in_room.stderr
        page = json.loads(in_room.stdout)
        assert [m["text"] for m in page["messages"]] == ["disk full in ops"]
        assert page["more"] is False
        one = await anyio.to_thread.run_sync(grep, "--grep", "disk", "-n", "1", "--json")
        assert [m["text"] for m in json.loads(one.stdout)["messages"]] == ["DISK almost full"]
        assert json.loads(one.stdout)["more"] is True
        for bad in ["", "  ", "--"]:
            usage = await anyio.to_thread.run_sync(grep, f"--grep={bad}")
            assert usage.returncode == 2 and "at least one word" in usage.stderr, bad
    finally:
        server.stop()
