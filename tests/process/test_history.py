"""History over the wire, against a real SQLite file: msgids, paging, ``history|N``,
``--replay``, restarts, ``kill -9`` of a loaded server, and a store that stops writing.

Here the tests that run imkit subprocesses; the others are in server/test_history.py."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import sqlite3
import stat
from pathlib import Path
from typing import Any

import anyio

from tests.support import (
    all_history,
    close_open_clients,
    free_port,
    joined,
    json_client,
    start_server_process,
)


async def _load_until_killed(
    address: str, pid: int, tag: str, hold_lock: Path | None
) -> dict[str, str]:
    """Four JSON senders, each keeping 20 messages in flight, until ``kill -9`` at a
    random moment (with ``hold_lock``, while another connection holds the database's
    write lock); returns the text and msgid of every message that got its ok."""
    acked: dict[str, str] = {}

    async def sender(number: int) -> None:
        client = await json_client(address)
        window = anyio.Semaphore(20)

        async def write() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):  # killed
                for i in range(1_000_000):
                    await window.acquire()
                    text = f"{tag}-{number}-{i}"
                    line = json.dumps({"type": "message", "text": text, "id": text})
                    await client.send(line + "\n")

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            try:
                while True:  # until the kill closes the connection
                    reply = await client.json(timeout=30)
                    if reply.get("type") == "ok":
                        acked[reply["id"]] = reply["msgid"]
                        window.release()
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, OSError):
                tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for number in range(4):
            tg.start_soon(sender, number)
        await anyio.sleep(random.uniform(0.3, 1.2))
        with contextlib.closing(
            sqlite3.connect(hold_lock or ":memory:", isolation_level=None)
        ) as db:
            if hold_lock is not None:
                db.execute("BEGIN IMMEDIATE")
                await anyio.sleep(random.uniform(0.2, 0.6))
            os.kill(pid, signal.SIGKILL)
    return acked


async def test_history_and_ids_outlive_the_server(tmp_path: Path) -> None:
    db = str(tmp_path / "imkit.db")

    async def talk(address: str, text: str) -> tuple[str, list[dict[str, Any]]]:
        client = await json_client(address)
        ok = await client.request(type="message", text=text)
        assert ok["type"] == "ok"
        history = await all_history(client)
        await client.aclose()
        return ok["msgid"], history

    first = start_server_process("--db", db)
    msgid1, _ = await talk(first.address, "before the restart")
    assert first.stop() == 0
    second = start_server_process("--db", db)
    try:
        msgid2, history = await talk(second.address, "after the restart")
        assert [m["text"] for m in history] == ["before the restart", "after the restart"]
        assert [m["msgid"] for m in history] == [msgid1, msgid2] and msgid2 > msgid1
    finally:
        assert second.stop() == 0


async def test_every_acknowledged_message_survives_kill_9(tmp_path: Path) -> None:
    db = str(tmp_path / "imkit.db")
    acked_all: dict[str, str] = {}
    for round_number in range(4):
        server = start_server_process("--db", db, "--rate", "0")
        # Every other round, an operator's sqlite3 shell holds the write lock when the
        # kill comes: commits wait, so many messages are delivered but not yet stored.
        hold = Path(db) if round_number % 2 else None
        tag = f"r{round_number}"
        try:
            acked = await _load_until_killed(server.address, server.proc.pid, tag, hold)
        finally:
            await close_open_clients()
        server.proc.wait(10)
        assert acked, "the server acknowledged nothing before it was killed"
        acked_all.update(acked)

        after = start_server_process("--db", db)
        try:
            client = await json_client(after.address)
            history = await all_history(client)
            await client.aclose()
        finally:
            assert after.stop() == 0
        texts = [m["text"] for m in history]
        assert len(texts) == len(set(texts)), "a message was stored twice"
        stored = {m["text"]: m["msgid"] for m in history}
        missing = [text for text in acked_all if text not in stored]
        assert not missing, f"{len(missing)} acknowledged messages were lost: {missing[:5]}"
        assert all(stored[text] == msgid for text, msgid in acked_all.items())


async def test_a_store_that_cannot_write_refuses_then_recovers(tmp_path: Path) -> None:
    server = start_server_process("--db", str(tmp_path / "imkit.db"), "--rate", "0")

    def limit_file_size(limit: int) -> None:
        # Without privileges: writes past the limit fail with EFBIG (CPython ignores
        # SIGXFSZ), as on a full disk.
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    async def scenario() -> None:
        sender = await json_client(server.address, "sender")
        watcher = await joined(server.address, "watcher")
        texter = await joined(server.address, "texter")
        assert (await sender.request(type="message", text="stored"))["type"] == "ok"
        await watcher.line_matching("stored")
        await texter.line_matching("stored")

        limit_file_size(1)
        # The first failure is only known once its batch fails: it was delivered.
        first = await sender.request(type="message", text="delivered, not stored")
        assert first["code"] == "unavailable" and first["delivered"] is True
        assert await watcher.line() == f"[{sender.addr}]sender:delivered, not stored\n"
        # From then on a message is refused before anyone sees it.
        refused = await sender.request(type="message", text="refused")
        assert refused["code"] == "unavailable" and "delivered" not in refused
        await texter.line_matching("delivered, not stored")
        await texter.send("refused too\n")
        line = await texter.line()
        assert line.startswith("error: the message was not sent: cannot write"), line
        assert await watcher.silent(0.5)
        # Private messages do not touch the store: they still go through.
        assert (await sender.request(type="message", to="watcher", text="psst"))["type"] == "ok"
        assert await watcher.line() == "sender say: psst\n"

        limit_file_size(resource.RLIM_INFINITY)
        with anyio.fail_after(15):  # the store tries a write every second
            while (await sender.request(type="message", text="back"))["type"] != "ok":
                await anyio.sleep(0.2)
        assert [m["text"] for m in await all_history(sender)] == ["stored", "back"]

    try:
        await scenario()
    finally:
        await close_open_clients()
        assert server.stop() == 0
    log = server.stderr()
    assert log.count("the store cannot write") == 1, log  # once per outage
    assert log.count("the store writes again") == 1
    assert "Traceback" not in log


def test_where_history_is_kept_by_default(tmp_path: Path) -> None:
    port = free_port()
    # start_server_process adds --port 0; a later --port wins in click.
    server = start_server_process("--port", str(port))
    try:
        path = Path(os.environ["XDG_STATE_HOME"]) / "imkit" / f"imkit-{port}.db"
        assert f"history: SQLite {path}" in server.stderr()
        assert path.is_file() and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        assert server.stop() == 0
    for args in [(), ("--db", "none")]:
        server = start_server_process(*args)
        assert "history: memory" in server.stderr()
        assert server.stop() == 0
