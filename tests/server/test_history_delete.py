"""Removing spam from history (issue 14, point 6): `imkit history delete MSGID...` and
`--user NAME [--since DURATION]`, with the SQLite store and in memory, in a cluster
through Redis; deleted messages are gone from every later page and from the replay, on
every node, also after a restart, and the deletion is logged with who made it.

Here the tests that need an in-process server on loopback; the others are in
cluster/test_history_delete.py, process/test_history_delete.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from imkit.hub.core import Hub
from imkit.server import Server, ServerConfig
from tests.support import (
    Clock,
    LineClient,
    ask,
    joined,
    run_server,
    say,
)


async def texts(server: Server) -> list[str]:
    page = await ask(server, type="history", limit=100)
    return [f"{m['from']}:{m['text']}" for m in page["messages"]]


@pytest.fixture(params=["sqlite", "memory"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    clock = Clock()
    db = str(tmp_path / "h.db") if request.param == "sqlite" else "none"
    config = ServerConfig(port=0, db=db, idle_timeout=0, rate=0, replay=10, retain_days=0)
    async with run_server(config, Hub(wall_clock=clock)) as running:
        running.clock = clock  # type: ignore[attr-defined]
        yield running


async def test_delete_by_msgid_and_by_user(server: Server) -> None:
    address = server.addresses[0]
    sam = await joined(address, "sam")
    ann = await joined(address, "ann")
    await say(sam, "buy pills", "more pills")
    await say(ann, "hello")
    clock: Clock = server.clock  # type: ignore[attr-defined]
    clock.now += 100
    await say(sam, "pills again")
    page = await ask(server, type="history", limit=100)
    first = page["messages"][0]["msgid"]
    reply = await ask(server, type="history_delete", msgids=[first, "1000000000000000"])
    assert reply == {"type": "ok", "deleted": 1}  # an unknown msgid is no error
    assert await texts(server) == ["sam:more pills", "ann:hello", "sam:pills again"]
    # The last 50 seconds of SAM (any case): only the newest.
    reply = await ask(server, type="history_delete", user="SAM", since=50)
    assert reply == {"type": "ok", "deleted": 1}
    assert await texts(server) == ["sam:more pills", "ann:hello"]
    reply = await ask(server, type="history_delete", user="sam")
    assert reply == {"type": "ok", "deleted": 1}
    assert await texts(server) == ["ann:hello"]
    # Nor in the replay a new text client gets.
    late = await LineClient.connect(address)
    await late.line()  # its own online line
    assert await late.line() == f"past {_iso(1_800_000_000)} [{ann.addr}]ann:hello\n"
    assert await late.silent(0.3)
    bads: list[dict[str, Any]] = [
        {"msgids": ["x"]},
        {"msgids": []},
        {"user": "sam", "msgids": [first]},
        {},
        {"user": "sam", "since": -1},
    ]
    for bad in bads:
        assert (await ask(server, type="history_delete", **bad))["code"] == "bad_request"


def _iso(seconds: float) -> str:
    from imkit.protocol import iso_time

    return iso_time(seconds, milliseconds=False)
