"""Files changed under a running `imkit serve`: its ``-wal`` removed, its database file
overwritten in place. Real servers, real files, a real ``kill -9``: nothing acknowledged
may be lost, and nothing may be acknowledged into a file a restart cannot see."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from imkit.store.files import WATCH_INTERVAL
from tests.support import (
    all_history,
    close_open_clients,
    json_client,
    run_imkit,
    start_server_process,
)


def imkit(*args: str) -> subprocess.CompletedProcess[str]:
    return run_imkit(*args)


@pytest.mark.parametrize("fsync", [False, True], ids=["default", "fsync"])
async def test_a_removed_wal_is_folded_back_and_nothing_acknowledged_is_lost(
    tmp_path: Path, fsync: bool
) -> None:
    db = tmp_path / "imkit.db"
    wal = tmp_path / "imkit.db-wal"
    server = start_server_process("--db", str(db), "--rate", "0", *(["--fsync"] if fsync else []))
    try:
        sender = await json_client(server.address, "sender")
        for number in range(50):
            reply = await sender.request(type="message", text=f"before {number}")
            assert reply["type"] == "ok", reply
        wal.unlink()  # what SQLite has open is now no file a restart can find
        # Idle, the writer notices within a second (WATCH_INTERVAL) and folds it back.
        await anyio.sleep(2 * WATCH_INTERVAL)
        port = server.address.rsplit(":", 1)[1]
        banned = await anyio.to_thread.run_sync(imkit, "ban", "203.0.113.7", "--port", port)
        assert banned.returncode == 0, banned.stderr
        for number in range(50):
            reply = await sender.request(type="message", text=f"after {number}")
            assert reply["type"] == "ok", reply
        # Removed again, and written to at once: the batch itself checks first.
        wal.unlink(missing_ok=True)  # (before the fix there was no new one)
        reply = await sender.request(type="message", text="at once")
        assert reply["type"] == "ok", reply
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    finally:
        await close_open_clients()
        if server.proc.poll() is None:
            server.proc.kill()
    after = start_server_process("--db", str(db))
    try:
        client = await json_client(after.address)
        texts = [m["text"] for m in await all_history(client)]
        await client.aclose()
    finally:
        assert after.stop() == 0
    expected = [f"before {n}" for n in range(50)] + [f"after {n}" for n in range(50)]
    assert texts == [*expected, "at once"], f"{len(texts)} of 101 kept"
    with contextlib.closing(sqlite3.connect(db)) as kept:
        assert kept.execute("SELECT target FROM bans").fetchall() == [("203.0.113.7",)]
    log = server.stderr()
    assert log.count("was removed under the server") == 2, log
    assert "Traceback" not in log


async def test_a_file_overwritten_in_place_is_not_written_into(tmp_path: Path) -> None:
    db = tmp_path / "imkit.db"
    server = start_server_process("--db", str(db), "--rate", "0")
    try:
        sender = await json_client(server.address, "sender")
        assert (await sender.request(type="message", text="first"))["type"] == "ok"
        backup = db.read_bytes()
        time.sleep(0.05)  # noqa: ASYNC251 - a later mtime, as a real restore would have
        # cp backup.db imkit.db: the same inode, other contents.
        with db.open("r+b") as file:
            file.write(backup)
            file.truncate()
        refused = await sender.request(type="message", text="into the backup")
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused
        assert "overwritten by another program" in refused["message"]
        again = await sender.request(type="message", text="refused before delivery")
        assert again["code"] == "unavailable" and "delivered" not in again
    finally:
        await close_open_clients()
        assert server.stop() == 0
    log = server.stderr()
    assert log.count("overwritten by another program") == 1, log
    assert "Traceback" not in log
