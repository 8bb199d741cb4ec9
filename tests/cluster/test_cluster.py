"""Cluster mode end to end (issue 12): real ``imkit serve --cluster`` nodes on a real
redis-server, clients in both modes on every node; each row of docs/protocol.md across
nodes, the rename race, one order for everyone, default names and msgids.

Failures (a node killed or paused, Redis down) are in test_cluster_failures.py, the
admin commands in test_cluster_admin.py."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import anyio
import pytest
import redis
from anyio.abc import SocketStream

from tests.support import TIMEOUT, LineClient, free_port
from tests.support.cluster import (
    MSGID,
    Cluster,
    RedisServer,
    User,
    arrive,
    check_who,
    offline,
    record_numbered,
    refused_name,
    rename,
    say,
    tell,
)


async def test_the_test_redis_starts_stops_and_restarts_empty(
    redis_server: RedisServer,
) -> None:
    r = redis_server.client()
    r.set("k", "v")
    assert r.get("k") == "v"
    assert r.config_get("save")["save"] == ""
    assert r.config_get("appendonly")["appendonly"] == "no"
    r.client_setname("imkit-reader-test")
    assert redis_server.kill_clients("pubsub") == 0
    other = redis_server.client()
    assert other.ping()
    assert redis_server.kill_clients_named("imkit-reader-test") == 1
    assert other.ping()
    redis_server.restart()
    assert r.get("k") is None  # the same port, empty
    redis_server.stop()
    assert not redis_server.running()
    with pytest.raises(redis.ConnectionError):
        r.ping()
    redis_server.start()
    assert r.ping()


async def test_three_nodes_with_both_modes_are_one_chat(cluster: Cluster) -> None:
    nodes = cluster.start_nodes(3)
    assert len({node.id for node in nodes}) == 3
    assert cluster.redis.client().get(f"{cluster.name}:format") == "2"
    for node in nodes:  # the test's Redis keeps nothing on disk: each node says so
        assert node.log_count("cluster: Redis keeps nothing on disk") == 1, node.log()

    # Connect: everyone, on every node, sees each arrival (the newcomer included).
    users: list[User] = []
    for node in nodes:
        for mode in ("text", "json"):
            users.append(await arrive(node, mode, list(users)))
    alex, ann, bob, bea, cid, cat = users

    # rename: JSON users everywhere see it, the renamer included; text users are not told.
    for user, name in zip(users, ["alex", "ann", "bob", "bea", "cid", "cat"], strict=True):
        await rename(user, name, [u for u in users if u is not user])
    # Names are unique across the cluster, without regard to case.
    await refused_name(cid, "ALEX")
    await refused_name(cat, "Bob")
    await refused_name(alex, "cAt")
    await refused_name(bea, "ANN")
    # A user may change the case of its own name.
    await rename(alex, "Alex", [u for u in users if u is not alex])

    # who: every user of the cluster in order of arrival, asked on any node.
    for user in users:
        await check_who(user, users)

    # Public messages reach everyone on every node, the sender included.
    msgids = [
        await say(user, f"hello from {user.name} | on {user.node.id}", users) for user in users
    ]
    assert all(msgid is not None for msgid in msgids)
    assert msgids == sorted(msgids, key=str) and len(set(msgids)) == len(msgids)

    # Private messages to a user on another node, in every pairing of modes.
    for step in (2, 3):
        for i, user in enumerate(users):
            await tell(user, users[(i + step) % 6], f"psst {i} | from {user.node.id}")
    await tell(cat, alex, "back to node one")
    # A recipient is found by its name's key, on whatever node.
    await alex.client.send("to|BOB|case does not matter\n")
    assert await bob.line() == "Alex say: case does not matter\n"
    # Nobody of that name anywhere.
    await alex.client.send("to|nobody|hi\n")
    assert await alex.line() == "username not exist\n"
    reply = await ann.request(type="message", to="nobody", text="hi", id="nobody")
    assert reply == {
        "type": "error",
        "id": "nobody",
        "code": "no_such_user",
        "message": "no user named 'nobody' is online",
    }
    await alex.client.send("to|bob\n")
    assert await alex.line() == "invalid message\n"

    # history: the same answer on every node.
    pages = [await user.request(type="history", limit=6, id="h") for user in (ann, bea, cat)]
    assert pages[0] == pages[1] == pages[2]
    page = pages[0]
    assert [m["msgid"] for m in page["messages"]] == msgids
    assert [(m["from"], m["addr"], m["text"]) for m in page["messages"]] == [
        (u.name, u.addr, f"hello from {u.name} | on {u.node.id}") for u in users
    ]
    texts = []
    for user in (alex, bob, cid):
        await user.client.send("history|3\n")
        texts.append([await user.line() for _ in range(3)])
    assert texts[0] == texts[1] == texts[2]
    for line, sender in zip(texts[0], users[3:], strict=True):
        assert re.fullmatch(
            rf"past \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[{re.escape(sender.addr)}\]"
            rf"{sender.name}:hello from {sender.name} \| on {sender.node.id}\n",
            line,
        ), line

    # Leaving: everyone else, on every node, sees it once.
    for leaving in (bea, cid):
        await leaving.aclose()
        users.remove(leaving)
        for user in users:
            await user.expect(offline(leaving))
    for user in users:
        await check_who(user, users)
    for user in users:
        await user.silent()


async def _connect_waiting_own_line(address: str) -> LineClient:
    client = await LineClient.connect(address)
    await client.line_matching(rf"^\[{re.escape(client.addr)}\]{re.escape(client.addr)}:user is")
    return client


async def test_twenty_users_on_three_nodes_race_for_one_name(cluster: Cluster) -> None:
    nodes = cluster.start_nodes(3)
    clients = [await _connect_waiting_own_line(nodes[i % 3].address) for i in range(20)]
    modes = ["json" if i % 2 else "text" for i in range(20)]
    for client, mode in zip(clients, modes, strict=True):
        if mode == "json":
            await client.request(type="hello", id="hello")
    spellings = ["prize", "Prize", "PRIZE", "pRiZe"]
    wanted = [spellings[i % 4] for i in range(20)]

    def request(i: int) -> bytes:
        if modes[i] == "json":
            return json.dumps({"type": "rename", "name": wanted[i], "id": f"race{i}"}).encode()
        return f"rename|{wanted[i]}".encode()

    async with anyio.create_task_group() as tg:  # all at once
        for i, client in enumerate(clients):
            tg.start_soon(client.send, request(i) + b"\n")

    won, lost = [], []
    renames: dict[int, list[dict[str, Any]]] = {}  # the rename events each JSON user saw
    for i, client in enumerate(clients):
        if modes[i] == "json":
            renames[i] = []
            with anyio.fail_after(TIMEOUT):
                while True:
                    reply = await client.json()
                    if reply.get("id") == f"race{i}":
                        break
                    if reply["type"] == "rename":
                        renames[i].append(reply)
            if reply == {"type": "ok", "id": f"race{i}", "name": wanted[i]}:
                won.append(i)
            else:
                assert reply == {
                    "type": "error",
                    "id": f"race{i}",
                    "code": "name_taken",
                    "message": f"the name {wanted[i]!r} is taken",
                }
                lost.append(i)
        else:
            line = await client.line_matching(r"has existed|you have updated")
            if line == f"you have updated user name: {wanted[i]}\n":
                won.append(i)
            else:
                assert line == f"{wanted[i]} has existed...\n"
                lost.append(i)
    assert len(won) == 1, won
    assert len(lost) == 19
    winner = won[0]

    # Every JSON user saw exactly one rename to the name, the winner's.
    addr = clients[winner].addr
    expected = {"type": "rename", "old": addr, "new": wanted[winner], "addr": addr}
    for i, seen in renames.items():
        with anyio.fail_after(TIMEOUT):
            while not seen:
                event = await clients[i].json()
                if event["type"] == "rename":
                    seen.append(event)
    await anyio.sleep(1)  # room for a second rename event, if there were one
    for i, seen in renames.items():
        with anyio.move_on_after(0.2):
            while True:
                event = await clients[i].json(timeout=2)
                if event["type"] == "rename":
                    seen.append(event)
        assert seen == [expected], (i, seen)

    # Every node's who shows the winner under the name, once, and all 20 users.
    for node in nodes:
        probe = await LineClient.connect(node.address)
        await probe.request(type="hello", id="hello")
        reply = await probe.request(type="who", id="who")
        names = [u["name"] for u in reply["users"]]
        assert len(names) == 21
        assert [n for n in names if n.casefold() == "prize"] == [wanted[winner]]
        await probe.aclose()


async def test_two_senders_on_two_nodes_one_order_for_everyone(cluster: Cluster) -> None:
    nodes = cluster.start_nodes(3)
    users: list[User] = []
    for node in nodes:
        for mode in ("text", "json"):
            users.append(await arrive(node, mode, list(users), name=f"{mode}{node.port}"))
    first, second = users[0], users[3]  # text on node 1, JSON on node 2
    count = 500
    batches = {
        first.name: "".join(f"n {k}\n" for k in range(count)),
        second.name: "".join(
            json.dumps({"type": "message", "text": f"n {k}", "id": k}) + "\n" for k in range(count)
        ),
    }
    seen: dict[str, list[tuple[str, int]]] = {user.name: [] for user in users}
    async with anyio.create_task_group() as tg:
        for user in users:
            tg.start_soon(record_numbered, user, 2 * count, seen[user.name])
        tg.start_soon(first.client.send, batches[first.name])
        tg.start_soon(second.client.send, batches[second.name])

    reference = seen[first.name]
    for user in users:
        assert seen[user.name] == reference, f"{user.name} saw another order"
    for sender in (first, second):
        assert [k for name, k in reference if name == sender.name] == list(range(count))
    # The JSON sender had an ok for each of its messages, with ordered msgids.
    await _acknowledged(second, count)
    for user in users:
        await user.silent()

    # Private messages to a user on a third node: each sender's arrive in order.
    receiver = users[4]  # text, on node 3
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            first.client.send, "".join(f"to|{receiver.name}|p {k}\n" for k in range(count))
        )
        lines = "".join(
            json.dumps({"type": "message", "to": receiver.name, "text": f"p {k}", "id": k}) + "\n"
            for k in range(count)
        )
        tg.start_soon(second.client.send, lines)
    got: dict[str, list[int]] = {first.name: [], second.name: []}
    with anyio.fail_after(60):
        for _ in range(2 * count):
            found = re.fullmatch(r"(\S+) say: p (\d+)\n", await receiver.line(60))
            assert found, found
            got[found.group(1)].append(int(found.group(2)))
    assert got == {first.name: list(range(count)), second.name: list(range(count))}
    await _acknowledged(second, count)
    for user in users:
        await user.silent()


async def _acknowledged(user: User, count: int) -> None:
    """``user`` (JSON) has an ok for each of its requests 0..count-1, whose msgids grow
    in the order they were sent; it receives nothing else meanwhile."""
    acks: dict[int, str] = {}
    with anyio.fail_after(60):
        while len(acks) < count:
            reply = json.loads(await user.line(60))
            assert reply["type"] == "ok", reply
            acks[reply["id"]] = reply["msgid"]
    assert sorted(acks) == list(range(count))
    msgids = [acks[k] for k in range(count)]
    assert msgids == sorted(msgids) and len(set(msgids)) == count


async def _connect_from(port: int, address: str) -> LineClient:
    """A client whose local address is 127.0.0.1:PORT (several nodes may see one
    address: each connection has another server port)."""
    host, _, server_port = address.rpartition(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    await anyio.to_thread.run_sync(sock.connect, (host, int(server_port)))
    return LineClient(await SocketStream.from_socket(sock))


async def test_default_names_are_unique_across_nodes_for_one_address(cluster: Cluster) -> None:
    nodes = cluster.start_nodes(3)
    port = free_port()
    clients: list[LineClient] = []
    addr = f"127.0.0.1:{port}"
    for i, node in enumerate(nodes):
        client = await _connect_from(port, node.address)
        assert client.addr == addr
        name = addr if i == 0 else f"{addr}#{i + 1}"
        clients.append(client)
        for seer in clients:
            assert await seer.line() == f"[{addr}]{name}:user is online\n"
    # Each one is reached by its own name.
    await clients[0].send(f"to|{addr}#3|to the third\n")
    assert await clients[2].line() == f"{addr} say: to the third\n"
    await clients[2].send(f"to|{addr}#2|to the second\n")
    assert await clients[1].line() == f"{addr}#3 say: to the second\n"
    await clients[1].send("who\n")
    assert await clients[1].lines(3) == [
        f"[{addr}]{addr}:online...\n",
        f"[{addr}]{addr}#2:online...\n",
        f"[{addr}]{addr}#3:online...\n",
    ]
    # Like an address, such a name cannot be taken with rename.
    await clients[0].send(f"rename|{addr}#2\n")
    assert (await clients[0].line()).startswith(f"error: invalid name '{addr}#2'")
    # A user who leaves takes only its own name with it.
    await clients[1].aclose()
    for seer in (clients[0], clients[2]):
        assert await seer.line() == f"[{addr}]{addr}#2:user offline\n"
    await clients[2].send("who\n")
    assert await clients[2].lines(2) == [
        f"[{addr}]{addr}:online...\n",
        f"[{addr}]{addr}#3:online...\n",
    ]


async def test_msgids_are_unique_and_increasing_across_nodes(cluster: Cluster) -> None:
    nodes = cluster.start_nodes(3)
    bots: list[User] = []
    for node in nodes:
        bots.append(await arrive(node, "json", list(bots), name=f"bot{node.port}"))
    redis_ms = int(cluster.redis.client().time()[0]) * 1000
    ids: list[str] = []
    for round_ in range(5):
        for i, bot in enumerate(bots):
            for to in (None, bots[(i + 1) % 3].name):  # public, then private to the next node
                ok = await bot.request(type="message", text=f"m{round_}", to=to, id="m")
                assert ok["type"] == "ok", ok
                ids.append(ok["msgid"])
    assert all(MSGID.match(msgid) for msgid in ids), ids
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Redis' clock: the millisecond (within a few seconds) followed by a 3-digit count.
    assert abs(int(ids[0][:13]) - redis_ms) < 10_000, (ids[0], redis_ms)

    # Sent at once from three nodes: every msgid once, in the order everyone receives.
    for bot in bots:
        bot.pending.clear()
        while not await bot.client.silent(0.3):
            pass
    per_bot = 40
    async with anyio.create_task_group() as tg:
        for bot in bots:
            batch = "".join(
                json.dumps({"type": "message", "text": f"x{k}", "id": f"x{k}"}) + "\n"
                for k in range(per_bot)
            )
            tg.start_soon(bot.client.send, batch)
    for bot in bots:
        events: list[dict[str, Any]] = []
        acked: list[str] = []
        with anyio.fail_after(60):
            while len(events) < 3 * per_bot or len(acked) < per_bot:
                value = await bot.json(timeout=60)
                if value["type"] == "message":
                    events.append(value)
                else:
                    assert value["type"] == "ok", value
                    acked.append(value["msgid"])
        received = [event["msgid"] for event in events]
        assert len(set(received)) == 3 * per_bot
        assert received == sorted(received), "msgids out of the order of delivery"
        assert received[0] > ids[-1]
        assert set(acked) <= set(received)
        assert acked == sorted(acked)
