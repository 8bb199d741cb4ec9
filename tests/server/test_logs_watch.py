"""`imkit serve --log-format json` and `imkit stats --watch`, through real `imkit serve`
processes, real clients, a pipe and a real terminal (tmux)."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest

from imkit.cli.logformat import JsonFormatter
from imkit.server import ServerConfig
from tests.support import (
    IMKIT,
    TIMEOUT,
    InteractiveProcess,
    ServerProcess,
    joined,
    run_server,
)

# ------------------------------------------------------------------ --log-format json


def json_log(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server has logged so far, each parsed as one JSON object."""
    records = []
    for line in list(server.log):
        assert line.endswith("\n"), line
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


async def logged(server: ServerProcess, event: str, **fields: Any) -> dict[str, Any]:
    """The first record of ``event`` with these ``fields``, once the server logged it."""
    with anyio.fail_after(TIMEOUT):
        while True:
            for record in json_log(server):
                if record["event"] == event and all(
                    record.get(key) == value for key, value in fields.items()
                ):
                    return record
            await anyio.sleep(0.05)


def json_records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The records of ``event`` caught in this process, as --log-format json has them."""
    formatter = JsonFormatter()
    entries = [json.loads(formatter.format(record)) for record in caplog.records]
    return [entry for entry in entries if entry["event"] == event]


# ------------------------------------------------------------------ stats --watch


def watch(admin_socket: str, *args: str) -> InteractiveProcess:
    command = [*IMKIT, "stats", "--watch", "--interval", "0.2", "--admin-socket", admin_socket]
    return InteractiveProcess([*command, *args])


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
