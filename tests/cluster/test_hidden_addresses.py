"""--hide-addresses (issue 14, requirement 4): users see pseudonyms, never each other's
addresses; the operator (`imkit who`, the log) sees the addresses.

Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a
scan of everything a client received can look for another client's IP at all, not
only for its ``ip:port``.

Here the tests that need a real redis-server; the others are in
process/test_hidden_addresses.py, unit/test_hidden_addresses.py."""

from __future__ import annotations

import json
from typing import Any

import anyio

from imkit.cluster.terms import DEFAULT_NAMES
from imkit.rules.pseudonyms import pseudonym
from tests.support import (
    TIMEOUT,
)
from tests.support.cluster import Cluster
from tests.support.hidden_addresses import connect_from, leaks

# --------------------------------------------------------------------- cluster


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
