"""A client that half-closes (sends its lines, then ends its writing side, as
``printf 'who\\nhello\\n' | nc -N HOST PORT`` does) still gets every reply it is owed,
then EOF: on one node, and on a cluster node, whose replies come back through Redis
after the client's end of stream (issue 26, item 7).

Here the tests that need a real redis-server; the others are in
process/test_half_close.py."""

from __future__ import annotations

import json
import re

import anyio

from tests.support import LineClient, half_closed
from tests.support.cluster import Cluster


def check_text(addr: str, received: list[str], others: list[str]) -> None:
    """``who`` then ``hello`` from the text client ``addr``: its online line, then its
    echo (both events, in the cluster's order), and the who list (``others`` and
    itself), nothing else. The who list is a script's reply, read from Redis on
    another connection than the events: it may come before the online line, a race
    of the cluster's that a client that stays connected meets too (about 1 in 300)."""
    online, echo = f"[{addr}]{addr}:user is online", f"[{addr}]{addr}:hello"
    assert online in received and echo in received, received
    assert received.index(online) < received.index(echo), received
    listed = [line for line in received if line.endswith(":online...")]
    assert sorted(listed) == sorted(f"[{a}]{a}:online..." for a in [*others, addr])
    assert len(received) == 2 + len(listed), received


async def test_a_half_closed_client_gets_its_replies_from_a_cluster_node(
    cluster: Cluster,
) -> None:
    nodes = cluster.start_nodes(2)
    watcher = await LineClient.connect(nodes[1].address)  # a text user on the other node
    assert await watcher.line() == f"[{watcher.addr}]{watcher.addr}:user is online\n"

    # Before the fix: nothing at all (its join, who reply and echo came back through
    # Redis after the connection had closed), while hello still reached everyone.
    addr, received = await anyio.to_thread.run_sync(half_closed, nodes[0].address, b"who\nhello\n")
    check_text(addr, received, [watcher.addr])
    # The others see it come, speak and leave, once each, in that order.
    assert await watcher.lines(3) == [
        f"[{addr}]{addr}:user is online\n",
        f"[{addr}]{addr}:hello\n",
        f"[{addr}]{addr}:user offline\n",
    ]

    # A JSON client's replies that are Redis' answers to its requests (its welcome
    # after the rename script, its ok after the publish script) come too.
    hello = {"type": "hello", "name": "halfway", "id": 1}
    message = {"type": "message", "text": "bye now", "id": 2}
    lines = (json.dumps(hello) + "\n" + json.dumps(message) + "\n").encode()
    addr, received = await anyio.to_thread.run_sync(half_closed, nodes[0].address, lines)
    replies = [json.loads(line) for line in received]
    kinds = [(r["type"], r.get("id")) for r in replies]
    assert ("welcome", 1) in kinds and ("ok", 2) in kinds, replies
    assert any(r["type"] == "message" and r["text"] == "bye now" for r in replies), replies
    assert await watcher.line_matching(r":bye now$") == f"[{addr}]halfway:bye now\n"
    assert re.fullmatch(rf"\[{re.escape(addr)}\]halfway:user offline\n", await watcher.line())
    await watcher.aclose()
