"""Cluster mode end to end (issue 12): the admin commands on any node act on the whole
cluster (who with its NODE column, kick, stats, history), and a node refuses a cluster
whose data format it does not understand.

Here the tests that need a real redis-server; the others are in
process/test_cluster_admin.py."""

from __future__ import annotations

import json
import re
import time

import anyio

from tests.support import TIMEOUT, run_imkit
from tests.support.cluster import (
    Cluster,
    arrive,
    offline,
    say,
)


def _who_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = stdout.splitlines()
    return lines[0].split(), [line.split() for line in lines[1:]]


async def test_admin_commands_act_on_the_whole_cluster(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2)
    alex = await arrive(one, "text", [], name="alex")
    bob = await arrive(two, "json", [alex], name="bob")
    carl = await arrive(two, "text", [alex, bob], name="carl")
    everyone = [alex, bob, carl]
    await say(alex, "first", everyone)
    await say(bob, "second", everyone)

    # who, on either node: all users in order of arrival, with their node.
    for node in (one, two):
        result = await anyio.to_thread.run_sync(node.admin, "who", "--json")
        assert result.returncode == 0, result.stderr
        listed = json.loads(result.stdout)
        assert [(u["name"], u["addr"], u["mode"], u["node"]) for u in listed] == [
            ("alex", alex.addr, "text", one.id),
            ("bob", bob.addr, "json", two.id),
            ("carl", carl.addr, "text", two.id),
        ]
        for user in listed:
            assert user["connected_at"].endswith("Z")
            if user["node"] == node.id:
                assert user["idle_s"] >= 0, user
        table = await anyio.to_thread.run_sync(node.admin, "who")
        assert table.returncode == 0, table.stderr
        header, rows = _who_rows(table.stdout)
        assert "NODE" in header, header
        assert [row[0] for row in rows] == ["alex", "bob", "carl"]
        assert [row[header.index("NODE")] for row in rows] == [one.id, two.id, two.id], rows

    # stats: this node's counters, the cluster's totals (as of the nodes' last beats),
    # the live nodes.
    with anyio.fail_after(TIMEOUT):
        while True:
            result = await anyio.to_thread.run_sync(one.admin, "stats", "--json")
            assert result.returncode == 0, result.stderr
            stats = json.loads(result.stdout)
            if stats["cluster"]["totals"]["messages_delivered"] == 6:
                break
            await anyio.sleep(0.2)
    assert stats["users_online"] == 1
    section = stats["cluster"]
    assert section["name"] == cluster.name
    assert section["data_lost"] == 0
    assert section["problem"] is None
    live = {n["id"]: n for n in section["nodes"]}
    assert set(live) == {one.id, two.id}
    assert live[one.id]["addr"] == one.address and live[two.id]["addr"] == two.address
    assert (live[one.id]["users"], live[two.id]["users"]) == (1, 2)
    assert all(0 <= n["last_seen_s"] < 10 for n in section["nodes"])
    totals = section["totals"]
    assert totals["users_online"] == 3
    assert totals["connections_now"] == 3
    assert totals["messages_received"] == 2
    assert totals["messages_delivered"] == 6
    table = await anyio.to_thread.run_sync(one.admin, "stats")
    assert table.returncode == 0 and one.id in table.stdout, table

    # history: the same on either node.
    answers = [await anyio.to_thread.run_sync(node.admin, "history") for node in (one, two)]
    assert answers[0].returncode == answers[1].returncode == 0, answers
    assert answers[0].stdout == answers[1].stdout
    assert [line.split(" ", 2)[2] for line in answers[0].stdout.splitlines()] == [
        f"[{alex.addr}]alex:first",
        f"[{bob.addr}]bob:second",
    ]

    # kick finds the user on the other node.
    result = await anyio.to_thread.run_sync(one.admin, "kick", "CARL", "--reason", "spam")
    assert (result.returncode, result.stdout, result.stderr) == (0, "kicked carl\n", "")
    assert await carl.line() == "you were removed by an administrator: spam\n"
    assert await carl.client.eof()
    await alex.expect(offline(carl))
    await bob.expect(offline(carl))
    result = await anyio.to_thread.run_sync(two.admin, "kick", "ghost")
    assert result.returncode == 1
    listed = json.loads((await anyio.to_thread.run_sync(two.admin, "who", "--json")).stdout)
    assert [u["name"] for u in listed] == ["alex", "bob"]
    # This node's id beside its counters (docs: `node` next to `cluster`).
    assert stats.get("node") == one.id, stats


async def test_a_node_refuses_a_cluster_of_another_data_format(cluster: Cluster) -> None:
    cluster.redis.client().set(f"{cluster.name}:format", "99")
    started = time.monotonic()
    result = await anyio.to_thread.run_sync(
        lambda: run_imkit("serve", "--port", "0", *cluster.serve_args(), env=cluster.env())
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # One line (the wording may name the cluster in quotes and point to the docs).
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(
        rf"Error: cluster '?{cluster.name}'? in Redis has data format 99;"
        r" this imkit understands (format )?2\b.*",
        last,
    ), result.stderr
    assert result.stderr.count("data format 99") == 1, result.stderr
    assert time.monotonic() - started < 20
    assert cluster.redis.client().get(f"{cluster.name}:format") == "99"  # untouched
    # Another cluster name on the same Redis is another cluster: that one starts.
    other = Cluster(cluster.redis, cluster.folder)
    node = other.start_node()
    try:
        assert cluster.redis.client().get(f"{other.name}:format") == "2"
    finally:
        other.stop()
    assert node.process.proc.returncode == 0
