"""Replies the client asked for are owed to it, whatever their size (issue 25, item 1):
a page of history, the list of who is online and the messages kept for a login reach a
client that reads, at the pace it reads, and are never a reason to drop it; a kept
message leaves the mailbox only once it has been written to the client's socket. Real
TCP, one in-process server; the cluster's side is at the end, on a real redis-server."""

from __future__ import annotations

import anyio
import anyio.abc

from imkit.server import Server
from tests.support import TIMEOUT, ask, joined
from tests.support.cluster import Cluster, Node, arrive
from tests.support.cluster import admin as node_admin


async def waiting(server: Server, account: str) -> int:
    listed = await ask(server, type="accounts")
    [entry] = [a for a in listed["accounts"] if a["name"] == account]
    count: int = entry["waiting"]
    return count


def control_text(number: int, size: int) -> str:
    """A message of raw control characters, as the hostile test sent them: each is six
    bytes in JSON (\\u0001), so the JSON form is about six times the text's length."""
    return f"{number:03d}" + "\x01" * (size - 3)


async def mail(address: str, to: str, texts: list[str]) -> None:
    """A guest leaves ``texts`` for the offline account ``to`` as the hostile test did,
    over text (a JSON request could not carry 4,000 control characters: escaped, it
    would pass the JSON line limit); each is acknowledged as kept."""
    sender = await joined(address)
    kept = f"{to} is offline; the message will be delivered when {to} logs in\n"
    for text in texts:
        await sender.send(f"to|{to}|{text}\n")
        assert await sender.line() == kept
    await sender.aclose()


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
