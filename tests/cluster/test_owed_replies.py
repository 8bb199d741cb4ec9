"""Replies the client asked for are owed to it, whatever their size (issue 25, item 1):
a page of history, the list of who is online and the messages kept for a login reach a
client that reads, at the pace it reads, and are never a reason to drop it; a kept
message leaves the mailbox only once it has been written to the client's socket. Real
TCP, one in-process server; the cluster's side is at the end, on a real redis-server.

Here the tests that need a real redis-server; the others are in
server/test_owed_replies.py."""

from __future__ import annotations

import anyio
import anyio.abc

from tests.support import TIMEOUT
from tests.support.cluster import Cluster, Node, arrive
from tests.support.cluster import admin as node_admin
from tests.support.owed_replies import control_text, mail


async def _cluster_waiting(node: Node, account: str) -> int:
    listed = await node_admin(node, type="accounts")
    [entry] = [a for a in listed["accounts"] if a["name"] == account]
    count: int = entry["waiting"]
    return count


async def test_kept_mail_larger_than_the_queue_reaches_a_login_on_another_node(
    cluster: Cluster,
) -> None:
    a, b = cluster.start_nodes(2, "--max-queue", "20000", "--rate", "0")
    reply = await node_admin(a, type="account_add", name="victim", password="pw-xxxxxxxx")
    assert reply["type"] == "ok", reply
    texts = [control_text(n, 1000) for n in range(20)]
    await mail(a.address, "victim", texts)
    assert await _cluster_waiting(b, "victim") == 20
    user = await arrive(b, "json", [])
    reply = await user.request(type="login", name="victim", password="pw-xxxxxxxx", id="in")
    assert reply["type"] == "ok", reply
    kept: list[str] = []
    with anyio.fail_after(TIMEOUT):
        while len(kept) < 20:
            event = await user.json()
            assert event["type"] != "bye", event
            if event["type"] == "message" and event["to"] is not None:
                kept.append(event["text"])
    assert kept == texts
    with anyio.fail_after(TIMEOUT):
        while await _cluster_waiting(a, "victim"):
            await anyio.sleep(0.1)
