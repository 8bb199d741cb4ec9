"""Rooms on a cluster (docs/cluster.md, "Rooms"), for what only a cluster has: a node
that dies takes its users out of their rooms once; one order of a room's messages across
nodes; a node reads only the streams of its users' rooms; Redis unreachable. Real nodes
(processes) and a real redis-server, except where a node's reader is inspected (an
in-process node). Every behaviour a user sees the same on one node and two is in
tests/behaviour/test_rooms.py."""

from __future__ import annotations

import json
import re
import signal
import uuid
from typing import Any

import anyio

from imkit.cluster.backend import RedisBackend
from imkit.server import ServerConfig
from tests.support import TIMEOUT, json_client, run_server
from tests.support.cluster import (
    PASSWORD,
    SLACK,
    Cluster,
    RedisServer,
    User,
    add_account,
    arrive,
    expect_all,
    log_in,
    offline,
)


async def _join(user: User, room: str) -> None:
    await user.client.send(f"join|{room}\n")
    pattern = rf"^{re.escape(room)} \* you have joined {re.escape(room)}$"
    await user.client.line_matching(pattern)


async def test_a_dead_node_takes_its_users_out_of_their_rooms_once(cluster: Cluster) -> None:
    timeout = 3.0
    a, c = cluster.start_nodes(2, node_timeout=timeout)
    watcher = await arrive(a, "text", [], name="watcher")
    victim = await arrive(c, "text", [watcher], name="victim")
    await _join(watcher, "#shared")
    await _join(victim, "#shared")
    await watcher.client.line_matching(r"^#shared \* victim .* has joined$")
    await _join(victim, "#alone")  # only the victim: ends with it
    await watcher.client.send("part|#lobby\n")  # told of the victim by #shared only
    await watcher.client.line_matching(r"^#lobby \* you have left")

    c.signal(signal.SIGKILL)
    await expect_all(watcher, [offline(victim)], timeout=timeout * 2 + SLACK)
    await watcher.silent(1.0)  # one offline line, not one per room or per node

    await watcher.client.send("who|#shared\n")
    assert await watcher.line() == f"#shared [{watcher.addr}]watcher:online... (operator)\n"
    await watcher.client.send("rooms\n")
    assert await watcher.line() == "#lobby * 0 members\n"
    assert await watcher.line() == "#shared * 1 member\n"
    await watcher.silent(0.5)
    r = cluster.redis.client()
    name = cluster.name
    assert r.hkeys(f"{name}:rooms") == ["#shared"]
    assert not r.exists(f"{name}:room:#alone:members")
    assert len(r.hkeys(f"{name}:room:#shared:members")) == 1


async def test_one_order_of_a_room_s_messages_for_every_member(cluster: Cluster) -> None:
    a, b = cluster.start_nodes(2)
    users: list[User] = []
    for node, name in ((a, "ann"), (b, "ben"), (a, "cat"), (b, "dan")):
        users.append(await arrive(node, "json", users, name=name))
    for user in users:
        reply = await user.request(type="join", room="#order")
        assert reply["type"] == "joined", reply
    count = 100
    seen: dict[str, list[str]] = {u.name: [] for u in users}

    async def record(user: User) -> None:
        with anyio.fail_after(TIMEOUT * 4):
            while len(seen[user.name]) < 2 * count:
                event = await user.json()
                if event.get("type") == "message" and event.get("room") == "#order":
                    seen[user.name].append(f"{event['from']}:{event['text']}")

    async def send(user: User) -> None:
        for n in range(count):
            line = {"type": "message", "room": "#order", "text": f"m{n}"}
            await user.client.send(json.dumps(line) + "\n")

    async with anyio.create_task_group() as tg:
        for user in users:
            tg.start_soon(record, user)
        tg.start_soon(send, users[0])
        tg.start_soon(send, users[1])
    first = seen["ann"]
    assert len(first) == 2 * count
    for name, lines in seen.items():
        assert lines == first, name
    # each sender's own messages in the order sent
    for sender in ("ann", "ben"):
        assert [x for x in first if x.startswith(sender)] == [
            f"{sender}:m{n}" for n in range(count)
        ]


async def test_a_node_reads_only_the_streams_of_its_users_rooms(
    redis_server: RedisServer,
) -> None:
    name = f"r{uuid.uuid4().hex[:10]}"
    config = ServerConfig(port=0, idle_timeout=0, cluster=redis_server.url, cluster_name=name)
    async with run_server(config) as one, run_server(config) as two:
        backends = [server.hub.backend for server in (one, two)]
        assert all(isinstance(b, RedisBackend) for b in backends)

        def rooms_read(k: int) -> set[str]:
            backend = backends[k]
            assert isinstance(backend, RedisBackend)
            prefix = f"{name}:room:"
            reader = backend.link.reader
            return {s[len(prefix) :].removesuffix(":log") for s in reader.read_from if prefix in s}

        alex = await json_client(one.addresses[0], "alex")
        bob = await json_client(two.addresses[0], "bob")
        await alex.request(type="join", room="#a")
        await bob.request(type="join", room="#b")
        assert rooms_read(0) == {"#a"} and rooms_read(1) == {"#b"}
        # a stream added while the node's XREAD waits is read at once (CLIENT UNBLOCK)
        await bob.request(type="join", room="#a")
        assert rooms_read(1) == {"#a", "#b"}
        with anyio.fail_after(2):
            await alex.request(type="message", room="#a", text="quick")
            assert (await bob.json_of_type("message"))["text"] == "quick"
        await bob.request(type="part", room="#a")
        assert rooms_read(1) == {"#b"}
        await alex.aclose()
        with anyio.fail_after(TIMEOUT):
            while rooms_read(0):
                await anyio.sleep(0.05)


async def test_room_requests_are_unavailable_while_redis_is_unreachable(
    cluster: Cluster,
) -> None:
    a, b = cluster.start_nodes(2)
    alex = await arrive(a, "text", [], name="alex")
    bea = await arrive(b, "json", [alex], name="bea")
    await _join(alex, "#r")
    cluster.redis.stop()
    try:
        for line in ("join|#other", "to|#r|hello", "who|#r", "rooms", "topic|#r|t"):
            await alex.client.send(line + "\n")
            got = await alex.client.line_matching("^error")
            assert got.startswith("error: the chat is unavailable"), (line, got)
        requests: list[dict[str, Any]] = [
            {"type": "join", "room": "#r"},
            {"type": "message", "room": "#r", "text": "hi"},
            {"type": "rooms"},
        ]
        for request in requests:
            reply = await bea.request(**request)
            assert (reply["type"], reply["code"]) == ("error", "unavailable"), reply
    finally:
        cluster.redis.start()


async def test_an_account_is_back_in_its_rooms_on_another_node(cluster: Cluster) -> None:
    a, b = cluster.start_nodes(2)
    await add_account(a, "kim")
    first = await arrive(a, "text", [])
    await log_in(first, "kim", [])
    await _join(first, "#kept")
    watcher = await arrive(b, "text", [])
    await first.aclose()
    await expect_all(watcher, [offline(first)])
    second = await arrive(b, "json", [watcher])
    reply = await second.request(type="login", name="kim", password=PASSWORD, id="login")
    assert reply["type"] == "ok", reply
    with anyio.fail_after(TIMEOUT):
        while True:
            event = await second.json()
            if event["type"] == "joined":
                break
    assert event["room"] == "#kept" and "id" not in event, event
