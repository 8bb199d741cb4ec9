"""Accounts on one server (issue 13) over real TCP: reserved names in both modes, login
and what others see, failed logins and their limit, takeover, --accounts-only, private
messages kept for an offline account (across a kill -9 too, once, in order, within the
limit and --offline-days), private history between accounts, password changes, and
an event loop that stays responsive while passwords are hashed. The cluster's side is
in tests/cluster/test_cluster_accounts.py.

Here the tests that run imkit subprocesses; the others are in server/test_accounts.py,
unit/test_accounts.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from imkit.client import admin as admin_client
from imkit.server import Server
from tests.support import (
    ask,
    joined,
    run_imkit,
    start_server_process,
)
from tests.support.accounts import COST, add, json_hello


@pytest.fixture
def server(accounts_server: Server) -> Server:
    """This file's server: tests/conftest.py's accounts_server."""
    return accounts_server


# ------------------------------------------------ races and look-alikes (review)


async def test_login_takes_the_name_and_others_see_it(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "Alex", "pw1")
    observer, _ = await json_hello(address)
    user = await joined(address)
    await user.send("login|alex|pw1\n")
    assert await user.line() == "you have logged in as Alex\n"
    event = await observer.json_of_type("rename")
    assert (event["old"], event["new"]) == (user.addr, "Alex")
    await user.send("hello all\n")
    message = await observer.json_of_type("message")
    assert (message["from"], message["account"], message["text"]) == ("Alex", "Alex", "hello all")
    await observer.send('{"type":"message","text":"from a guest"}\n')
    guest_message = await observer.json_of_type("message")
    assert guest_message["account"] is None
    who = await observer.request(type="who")
    accounts = {u["name"]: u["account"] for u in who["users"]}
    assert accounts == {observer.addr: None, "Alex": "Alex"}
    await user.send("rename|bob\n")
    assert (await user.line_matching("error")).startswith("error: you are logged in as Alex")
    users = await ask(server, type="who")
    assert {u["name"]: u["account"] for u in users["users"]} == accounts
    socket_path = server.config.admin_socket or ""
    table = await anyio.to_thread.run_sync(lambda: run_imkit("who", "--admin-socket", socket_path))
    assert [line.split()[-1] for line in table.stdout.splitlines()] == ["ACCOUNT", "-", "Alex"]


async def test_messages_kept_across_kill_9(short_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    args = ["--db", str(db), "--password-hash-cost", str(COST), "--rate", "0"]
    args += ["--admin-socket", str(short_dir / "a.sock")]
    first = start_server_process(*args)
    try:
        reply = await admin_client.request(
            short_dir / "a.sock", {"type": "account_add", "name": "alex", "password": "pw"}
        )
        assert reply["type"] == "ok"
        sender, _ = await json_hello(first.address, name="bot")
        msgids = []
        for n in range(3):
            reply = await sender.request(type="message", to="alex", text=f"kept {n}")
            msgids.append(reply["msgid"])  # ok: stored
        await sender.aclose()
    finally:
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    second = start_server_process(*args)
    try:
        user, welcome = await json_hello(second.address, login={"name": "alex", "password": "pw"})
        assert welcome["account"] == "alex"
        kept = [await user.json_of_type("message") for _ in range(3)]
        assert [m["msgid"] for m in kept] == msgids
        assert [m["text"] for m in kept] == ["kept 0", "kept 1", "kept 2"]
        await user.aclose()
        again, _ = await json_hello(second.address, login={"name": "alex", "password": "pw"})
        assert await again.silent()
        await again.aclose()
    finally:
        second.proc.terminate()
        second.proc.wait()
