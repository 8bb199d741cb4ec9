"""--hide-addresses (issue 14, requirement 4): users see pseudonyms, never each other's
addresses; the operator (`imkit who`, the log) sees the addresses.

Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a
scan of everything a client received can look for another client's IP at all, not
only for its ``ip:port``.

Here the tests that run imkit subprocesses; the others are in
cluster/test_hidden_addresses.py, unit/test_hidden_addresses.py."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imkit.rules.pseudonyms import pseudonym
from tests.support import (
    ServerProcess,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)
from tests.support.hidden_addresses import PSEUDONYM, connect_from, leaks


def secret_of(db: Path) -> bytes:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'address_secret'")
        return bytes.fromhex(row.fetchone()[0])


@pytest.fixture
def hidden(tmp_path: Path, short_dir: Path) -> Iterator[tuple[ServerProcess, Path, dict[str, str]]]:
    """``imkit serve --hide-addresses`` with a file of its own; its admin socket in
    ``short_dir``."""
    db = tmp_path / "chat.db"
    env = imkit_env(XDG_RUNTIME_DIR=str(short_dir))
    proc = start_server_process(
        "--hide-addresses", "--db", str(db), "--idle-timeout", "0", "--rate", "0", env=env
    )
    try:
        yield proc, db, env
    finally:
        proc.stop()


def admin_who(proc: ServerProcess, env: dict[str, str]) -> list[dict[str, object]]:
    port = split_addr(proc.address)[1]
    result = run_imkit("who", "--json", "--port", str(port), env=env)
    assert result.returncode == 0, result.stderr
    users = json.loads(result.stdout)
    assert isinstance(users, list)
    return users


# --------------------------------------------------------------------- cluster


async def test_nobody_receives_another_users_address(
    hidden: tuple[ServerProcess, Path, dict[str, str]],
) -> None:
    proc, db, env = hidden
    secret = secret_of(db)
    address = proc.address
    a = await connect_from("127.0.0.2", address)
    pa = pseudonym(secret, a.addr)
    assert await a.line() == f"[{pa}]{pa}:user is online\n"
    b = await connect_from("127.0.0.3", address)
    pb = pseudonym(secret, b.addr)
    assert pb != pa
    for seer in (a, b):
        assert await seer.line() == f"[{pb}]{pb}:user is online\n"
    # A JSON client: its welcome shows its own real address, and nothing else does.
    c = await connect_from("127.0.0.4", address)
    pc = pseudonym(secret, c.addr)
    welcome = await c.request(type="hello", v=1, name="carol")
    assert welcome["type"] == "welcome" and welcome["addr"] == c.addr
    assert welcome["name"] == "carol"
    for seer in (a, b):
        assert await seer.line() == f"[{pc}]{pc}:user is online\n"
    # A second connection from 127.0.0.3: the same pseudonym, the #2 rule.
    b2 = await connect_from("127.0.0.3", address)
    assert pseudonym(secret, b2.addr) == pb
    for seer in (a, b, b2):
        assert await seer.line() == f"[{pb}]{pb}#2:user is online\n"
    presence = await c.json_of_type("presence")
    assert presence == {"type": "presence", "name": f"{pb}#2", "addr": pb, "status": "online"}

    await a.send("rename|alex\n")
    assert await a.line() == "you have updated user name: alex\n"
    renamed = await c.json_of_type("rename")
    assert renamed == {"type": "rename", "old": pa, "new": "alex", "addr": pa}
    await a.send("hello everyone\n")
    for seer in (a, b, b2):
        assert await seer.line() == f"[{pa}]alex:hello everyone\n"
    message = await c.json_of_type("message")
    assert (message["from"], message["addr"], message["text"]) == ("alex", pa, "hello everyone")
    reply = await c.request(type="message", text="hi all")
    assert reply["type"] == "ok"
    for seer in (a, b, b2):
        assert await seer.line() == f"[{pc}]carol:hi all\n"
    # Private messages, both ways, and an error.
    await b.send("to|alex|psst\n")
    assert await a.line() == f"{pb} say: psst\n"
    await a.send(f"to|{pb}#2|hello twin\n")
    assert await b2.line() == "alex say: hello twin\n"
    await a.send("to|nobody|x\n")
    assert await a.line() == "username not exist\n"
    await b.send("rename|bad name\n")
    assert (await b.line()).startswith("error: invalid name")
    # who, in both modes.
    await b.send("who\n")
    assert await b.lines(4) == [
        f"[{pa}]alex:online...\n",
        f"[{pb}]{pb}:online...\n",
        f"[{pc}]carol:online...\n",
        f"[{pb}]{pb}#2:online...\n",
    ]
    users = await c.request(type="who")
    assert [u["addr"] for u in users["users"]] == [pa, pb, pc, pb]
    # History, in both modes.
    await b.send("history|5\n")
    past = await b.lines(2)
    assert past[0].endswith(f" [{pa}]alex:hello everyone\n")
    assert past[1].endswith(f" [{pc}]carol:hi all\n")
    page = await c.request(type="history", limit=5)
    assert [m["addr"] for m in page["messages"]] == [pa, pc]
    # Leaving.
    await b2.aclose()
    for seer in (a, b):
        assert await seer.line() == f"[{pb}]{pb}#2:user offline\n"
    assert (await c.json_of_type("presence"))["addr"] == pb

    # The operator sees the addresses, and which pseudonym each stands for.
    users_seen = await anyio.to_thread.run_sync(admin_who, proc, env)
    assert [(u["name"], u["addr"], u["pseudonym"]) for u in users_seen] == [
        ("alex", a.addr, pa),
        (pb, b.addr, pb),
        ("carol", c.addr, pc),
    ]
    table = await anyio.to_thread.run_sync(
        lambda: run_imkit("who", "--port", str(split_addr(address)[1]), env=env)
    )
    assert "PSEUDONYM" in table.stdout.splitlines()[0]
    assert re.search(rf"^alex +{re.escape(a.addr)} .* {pa}$", table.stdout, re.MULTILINE)
    assert f"{a.addr}: connected, shown as {pa}" in proc.stderr()

    clients = [a, b, c, b2]
    for client in (a, b, c):
        await client.read_all()
    for client in clients:
        assert client.seen, "the scan must have something to scan"
        assert leaks(client, clients) == [], (client.addr, client.seen)

    # History keeps no addresses: only pseudonyms are in the file.
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT sender, addr FROM messages").fetchall()
        dump = "\n".join(connection.iterdump())
    assert rows == [("alex", pa), ("carol", pc)]
    assert "127.0.0." not in dump


async def test_a_pseudonym_survives_a_reconnect_and_a_restart(
    tmp_path: Path, short_dir: Path
) -> None:
    db = tmp_path / "chat.db"
    env = imkit_env(XDG_RUNTIME_DIR=str(short_dir))
    seen = []
    for _ in range(2):  # the same file, two servers one after the other
        proc = start_server_process(
            "--db", str(db), "--idle-timeout", "0", env=env | {"IMKIT_HIDE_ADDRESSES": "1"}
        )
        try:
            for _ in range(2):  # two connections: two ports, one pseudonym
                client = await connect_from("127.0.0.5", proc.address)
                line = await client.line()
                shown = line[1 : line.index("]")]
                # (#2 when the server has not yet seen the last one leave)
                assert PSEUDONYM.match(shown) and line.startswith(f"[{shown}]{shown}")
                await client.send("said before\n")
                await client.line_matching("said before")
                seen.append(shown)
                await client.aclose()
            # The history of both starts shows the pseudonym, never the address.
            client = await connect_from("127.0.0.6", proc.address)
            await client.send("history|10\n")
            await client.line_matching(r"said before")
            await client.aclose()
        finally:
            assert proc.stop() == 0
    assert len(set(seen)) == 1, seen
    assert seen[0] == pseudonym(secret_of(db), "127.0.0.5:1")


async def test_without_the_option_addresses_are_shown_as_before(
    server_process: ServerProcess,
) -> None:
    a = await connect_from("127.0.0.2", server_process.address)
    assert await a.line() == f"[{a.addr}]{a.addr}:user is online\n"
    await a.send("hi\n")
    assert await a.line() == f"[{a.addr}]{a.addr}:hi\n"
    assert "shown as" not in server_process.stderr()
    await a.aclose()
