"""`imkit serve --log-format json` and `imkit stats --watch`, through real `imkit serve`
processes, real clients, a pipe and a real terminal (tmux).

Here the tests that need an in-process server on loopback; the others are in
process/test_logs_watch.py, unit/test_logs_watch.py."""

from __future__ import annotations

import logging

import anyio
import pytest

from imkit.server import ServerConfig
from tests.support import (
    TIMEOUT,
    joined,
    run_server,
)
from tests.support.logs import json_records

# ------------------------------------------------------------------ stats --watch


async def test_an_idle_kick_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imkit")
    async with run_server(ServerConfig(port=0, idle_timeout=0.3)) as server:
        client = await joined(server.addresses[0], "dozer")
        assert await client.line_matching("forced offline")
        await client.aclose()  # the server waits for the client's EOF before it closes
        with anyio.fail_after(TIMEOUT):
            while not json_records(caplog, "disconnected"):
                await anyio.sleep(0.02)
    [kick] = json_records(caplog, "idle_kick")
    assert (kick["user"], kick["addr"], kick["timeout_s"]) == ("dozer", client.addr, 0.3)
    assert kick["message"] == f"dozer ({client.addr}): idle for 0.3s, forced offline"
    [left] = json_records(caplog, "disconnected")
    assert (left["user"], left["addr"]) == ("dozer", client.addr)
