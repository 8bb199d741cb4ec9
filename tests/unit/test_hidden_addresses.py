"""--hide-addresses (issue 14, requirement 4): users see pseudonyms, never each other's
addresses; the operator (`imkit who`, the log) sees the addresses.

Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a
scan of everything a client received can look for another client's IP at all, not
only for its ``ip:port``."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from imkit.cluster.hub import DEFAULT_NAMES, numbered_names
from imkit.rules.names import name_key, name_problem
from imkit.rules.pseudonyms import host_of, pseudonym
from imkit.store import SqliteStore
from imkit.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.redis_support import Cluster, needs_redis
from tests.support import (
    TIMEOUT,
    LineClient,
    ServerProcess,
    close_open_clients,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)

PSEUDONYM = re.compile(r"^anon:[a-z2-7]{6}$")


@pytest.fixture(autouse=True)
async def close_clients(anyio_backend: str) -> AsyncIterator[None]:
    """The clients a test leaves open are closed on its own event loop."""
    yield
    await close_open_clients()


class Recorded(LineClient):
    """A line client that keeps every line it received, for the scan."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[str] = []

    async def line(self, timeout: float = TIMEOUT) -> str:
        line = await super().line(timeout)
        self.seen.append(line)
        return line

    @property
    def ip(self) -> str:
        return split_addr(self.addr)[0]

    async def read_all(self) -> None:
        """Read whatever is still on its way (into ``seen``)."""
        while not await self.silent(0.3):
            pass


async def connect_from(ip: str, address: str) -> Recorded:
    host, port = split_addr(address)
    return Recorded(await anyio.connect_tcp(host, port, local_host=ip))


def leaks(client: Recorded, others: list[Recorded]) -> list[str]:
    """Every other client's address, port or IP found in what ``client`` received (its
    own IP is allowed: its welcome shows its own address)."""
    received = "".join(client.seen)
    found = []
    for other in others:
        if other is client:
            continue
        ip, port = split_addr(other.addr)
        if other.addr in received or re.search(rf":{port}\b", received):
            found.append(other.addr)
        if ip != client.ip and ip in received:
            found.append(ip)
    return found


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


# ----------------------------------------------------------------- pseudonyms


def test_a_pseudonym_is_per_ip_keyed_and_never_a_name() -> None:
    secret = bytes(range(32))
    one = pseudonym(secret, "203.0.113.7:50312")
    assert PSEUDONYM.match(one)
    assert pseudonym(secret, "203.0.113.7:1") == one  # the port does not count
    assert pseudonym(secret, "[::ffff:203.0.113.7]:9") == one  # nor IPv4 mapped in IPv6
    assert pseudonym(secret, "203.0.113.8:50312") != one
    assert pseudonym(bytes(32), "203.0.113.7:50312") != one  # another secret
    assert host_of("[2001:db8::1]:443") == "2001:db8::1"
    assert host_of("[2001:DB8:0::1]:443") == "2001:db8::1"
    assert PSEUDONYM.match(pseudonym(secret, "[2001:db8::1]:443"))
    assert host_of("unix") == "unix"
    # Like an address, a pseudonym (and a numbered one) cannot be taken as a name.
    assert name_problem(one) is not None
    assert name_problem(f"{one}#2") is not None


def test_numbered_pseudonyms_keys_are_their_characters_keys() -> None:
    """The cluster's join script makes SHOWN#N's key from numbered_names' pieces."""
    rng = random.Random(14)
    for _ in range(50):
        shown = pseudonym(rng.randbytes(32), f"10.0.0.{rng.randrange(256)}:1")
        more = json.loads(numbered_names(shown))
        assert more["name"] == shown
        for n in [*range(DEFAULT_NAMES + 1, 200), 1009, 65536, 999999]:
            key = more["key"] + "".join(more["digits"][int(d)] for d in str(n))
            assert key == name_key(f"{shown}#{n}")


@pytest.mark.anyio
async def test_the_secret_is_kept_in_the_file_and_added_to_an_older_one(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:  # a file written by the imkit of schema 1
        for statement in MIGRATIONS[1]:
            db.execute(statement)
        db.execute(
            "INSERT INTO messages (id, time, sender, addr, recipient, text)"
            " VALUES (1795764673091000, 1795764673.091, 'alex', '127.0.0.1:50312', NULL, 'hi')"
        )
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=1")
    assert SCHEMA_VERSION == 4  # 2: bans, 3: the secret
    secrets = []
    for _ in range(2):
        store = SqliteStore(path, clock=lambda: 1795764680.0, retain_days=0)
        store.open()
        secrets.append(store.address_secret)
        assert [m.text for m in store.recent(5)] == ["hi"]  # migrated, not lost
        await store.close()
    assert len(secrets[0]) == 32 and secrets[0] == secrets[1]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# ------------------------------------------------------------------ one server


@pytest.mark.anyio
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


@pytest.mark.anyio
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


@pytest.mark.anyio
async def test_without_the_option_addresses_are_shown_as_before(
    server_process: ServerProcess,
) -> None:
    a = await connect_from("127.0.0.2", server_process.address)
    assert await a.line() == f"[{a.addr}]{a.addr}:user is online\n"
    await a.send("hi\n")
    assert await a.line() == f"[{a.addr}]{a.addr}:hi\n"
    assert "shown as" not in server_process.stderr()
    await a.aclose()


# --------------------------------------------------------------------- cluster


@needs_redis
@pytest.mark.anyio
async def test_a_cluster_shows_one_pseudonym_for_one_address_on_every_node(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, "--hide-addresses")
    secret = bytes.fromhex(str(cluster.redis.client().get(f"{cluster.name}:secret")))
    a = await connect_from("127.0.0.2", one.address)
    pa = pseudonym(secret, a.addr)
    assert await a.line() == f"[{pa}]{pa}:user is online\n"
    b = await connect_from("127.0.0.3", two.address)
    pb = pseudonym(secret, b.addr)
    for seer in (a, b):
        assert await seer.line() == f"[{pb}]{pb}:user is online\n"
    # The same address on the other node: the same pseudonym, numbered.
    a2 = await connect_from("127.0.0.2", two.address)
    for seer in (a, b, a2):
        assert await seer.line() == f"[{pa}]{pa}#2:user is online\n"
    c = await connect_from("127.0.0.4", two.address)
    pc = pseudonym(secret, c.addr)
    welcome = await c.request(type="hello", v=1, name="carol")
    assert welcome["addr"] == c.addr and welcome["name"] == "carol"
    for seer in (a, b, a2):
        await seer.line_matching(rf"^\[{pc}\]{pc}:user is online")
    await a.send("rename|alex\n")
    assert await a.line() == "you have updated user name: alex\n"
    assert await c.json_of_type("rename") == {
        "type": "rename",
        "old": pa,
        "new": "alex",
        "addr": pa,
    }
    await a.send("from node one\n")
    for seer in (a, b, a2):
        assert await seer.line() == f"[{pa}]alex:from node one\n"
    await b.send("to|alex|psst\n")
    assert await a.line() == f"{pb} say: psst\n"
    await a2.send("who\n")
    assert await a2.lines(4) == [
        f"[{pa}]alex:online...\n",
        f"[{pb}]{pb}:online...\n",
        f"[{pa}]{pa}#2:online...\n",
        f"[{pc}]carol:online...\n",
    ]
    page = await c.request(type="history", limit=5)
    assert [(m["from"], m["addr"]) for m in page["messages"]] == [("alex", pa)]
    # `imkit who` on either node shows every real address, and its pseudonym.
    for node in (one, two):
        result = await anyio.to_thread.run_sync(node.admin, "who", "--json")
        rows = json.loads(result.stdout)
        assert [(u["addr"], u["pseudonym"]) for u in rows] == [
            (a.addr, pa),
            (b.addr, pb),
            (a2.addr, pa),
            (c.addr, pc),
        ]
    # Redis' history has no address either.
    entries: Any = cluster.redis.client().xrange(f"{cluster.name}:hist")
    assert [fields["a"] for _, fields in entries] == [pa]
    conns: Any = cluster.redis.client().hvals(f"{cluster.name}:conns")
    assert sorted(json.loads(raw)["addr"] for raw in conns) == sorted([pa, pb, pa, pc])
    clients = [a, b, a2, c]
    for client in clients:
        await client.read_all()
        assert leaks(client, clients) == [], (client.addr, client.seen)


@needs_redis
@pytest.mark.anyio
async def test_a_cluster_numbers_more_connections_from_one_address_than_its_candidates(
    cluster: Cluster,
) -> None:
    """Every connection from one IP shares its pseudonym: past the 16 default names the
    node passes, the join script goes on numbering."""
    nodes = cluster.start_nodes(2, "--hide-addresses")
    clients = []
    names = []
    for i in range(DEFAULT_NAMES + 3):
        client = await connect_from("127.0.0.7", nodes[i % 2].address)
        line = await client.line()
        shown = line[1 : line.index("]")]
        names.append(line[len(shown) + 2 : -len(":user is online\n")])
        clients.append(client)
    assert names == [shown] + [f"{shown}#{n}" for n in range(2, DEFAULT_NAMES + 4)]
    await clients[0].send(f"to|{shown}#18|found you\n")
    assert await clients[17].line_matching("say:") == f"{shown} say: found you\n"


@needs_redis
@pytest.mark.anyio
async def test_a_redis_restarted_empty_gets_the_nodes_secret_back(cluster: Cluster) -> None:
    """The pseudonyms shown before Redis lost everything stay what they were."""
    node = cluster.start_node("--hide-addresses")
    key = f"{cluster.name}:secret"
    secret = cluster.redis.client().get(key)
    assert secret is not None and len(str(secret)) == 64
    a = await connect_from("127.0.0.2", node.address)
    await a.line()
    cluster.redis.stop()
    await anyio.to_thread.run_sync(node.wait_log, "cluster: cannot reach Redis", TIMEOUT)
    cluster.redis.start()  # the same port, empty
    await anyio.to_thread.run_sync(node.wait_log, "cluster: Redis is back after", 20)
    assert cluster.redis.client().get(key) == secret
    b = await connect_from("127.0.0.2", node.address)
    shown = pseudonym(bytes.fromhex(str(secret)), b.addr)
    assert await b.line_matching("user is online") == f"[{shown}]{shown}#2:user is online\n"
