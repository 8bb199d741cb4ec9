"""Removing spam from history (issue 14, point 6): `imkit history delete MSGID...` and
`--user NAME [--since DURATION]`, with the SQLite store and in memory, in a cluster
through Redis; deleted messages are gone from every later page and from the replay, on
every node, also after a restart, and the deletion is logged with who made it.

Here the tests that run imkit subprocesses; the others are in
cluster/test_history_delete.py, server/test_history_delete.py."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from tests.support import joined, run_imkit, say, start_server_process


async def test_deleted_messages_stay_deleted_after_a_restart(short_dir: Path) -> None:
    db, sock = short_dir / "d.db", short_dir / "d.sock"
    args = ("--db", str(db), "--admin-socket", str(sock), "--rate", "0")
    first = start_server_process(*args)
    try:
        sam = await joined(first.address, "sam")
        await say(sam, "spam one", "spam two", "fine")
        listed = json.loads(run_imkit("history", "--json", "--admin-socket", str(sock)).stdout)
        msgids = [m["msgid"] for m in listed["messages"][:2]]
        result = await anyio.to_thread.run_sync(
            lambda: run_imkit("history", "delete", *msgids, "--admin-socket", str(sock))
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "deleted 2 messages\n"
        await sam.aclose()
    finally:
        first.stop()
    assert '"history_delete"' not in first.stderr()  # text log: the sentence, with who
    assert "history: 2 messages of 2 msgids deleted by uid " in first.stderr()
    second = start_server_process(*args)
    try:
        shown = run_imkit("history", "--admin-socket", str(sock))
        assert shown.returncode == 0, shown.stderr
        assert [line.split("]", 1)[1] for line in shown.stdout.splitlines()] == ["sam:fine"]
        usage = run_imkit("history", "delete", "--admin-socket", str(sock))
        assert usage.returncode == 2 and "give MSGIDs or --user NAME" in usage.stderr
        usage = run_imkit("history", "delete", "123", "--admin-socket", str(sock))
        assert usage.returncode == 2 and "is not a msgid" in usage.stderr
        usage = run_imkit("history", "delete", "--since", "1h", "x", "--admin-socket", str(sock))
        assert usage.returncode == 2
    finally:
        second.stop()
