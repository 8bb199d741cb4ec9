"""Removing spam from history (issue 14, point 6): `imkit history delete MSGID...` and
`--user NAME [--since DURATION]`, with the SQLite store and in memory, in a cluster
through Redis; deleted messages are gone from every later page and from the replay, on
every node, also after a restart, and the deletion is logged with who made it.

Here the tests that need a real redis-server; the others are in
process/test_history_delete.py, server/test_history_delete.py."""

from __future__ import annotations

import json
from functools import partial

import anyio

from tests.support import LineClient, joined, say
from tests.support.cluster import Cluster


async def test_in_a_cluster_a_deletion_reaches_every_node(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--replay", "10", "--rate", "0")
    sam = await joined(one.address, "sam")
    await say(sam, "spam", "spam")
    ann = await LineClient.connect(two.address)  # gets the replay: sam's two lines
    await ann.send("rename|ann\n")
    await ann.line_matching("^you have updated user name: ann$")
    await say(ann, "hi")
    # The replay on node one holds sam's two lines; delete them on node two.
    result = await anyio.to_thread.run_sync(lambda: two.admin("history", "delete", "--user", "Sam"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted 2 messages\n"
    for node in (one, two):
        shown = await anyio.to_thread.run_sync(partial(node.admin, "history", "--json"))
        assert [m["text"] for m in json.loads(shown.stdout)["messages"]] == ["hi"]
    with anyio.fail_after(10):  # the forget event reaches node one's replay
        while True:
            late = await LineClient.connect(one.address)
            await late.line()  # its own online line
            past = [await late.line()]
            if await late.silent(0.3):
                break
            await late.aclose()
            await anyio.sleep(0.2)
    assert past[0].endswith("ann:hi\n")
    for client in (sam, ann, late):
        await client.aclose()
