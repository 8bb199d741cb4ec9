"""The cluster under faults (issue 26, items 2, 5 and 8): an administrator's kick and
mute of users whose node is paused past --node-timeout; Redis out of memory; an
evicting maxmemory-policy; accounts lost with a Redis that restarted empty; what
`imkit kick` says when Redis is gone; redis-py's warnings at start. Real nodes, a real
redis-server."""

from __future__ import annotations

import json
import signal
import time

import anyio
import pytest
import redis

from tests.support import TIMEOUT, LineClient, free_port
from tests.support.cluster import (
    SLACK,
    Cluster,
    add_account,
    arrive,
    check_who,
    cluster_metrics,
    drain,
    expect_all,
    healthz,
    log_in,
    offline,
    online,
    say,
)

FULL_LINE = "error: the chat is unavailable: the cluster's Redis is full"
DATA_LOST = "the chat's server lost its data, your account with it; it must be added again"


async def test_a_node_starts_without_warnings_from_redis_py(cluster: Cluster) -> None:
    node = cluster.start_node()
    await anyio.sleep(0.5)  # past the first beat
    assert "Warning" not in node.log(), node.log()


async def test_a_kick_and_a_mute_for_a_paused_node_hold_when_it_comes_back(
    cluster: Cluster,
) -> None:
    # Beats every 1.6 s: the node is silent enough to be "paused" (2 beats) well before
    # it is dead, with seconds between for the two admin commands on a busy machine.
    timeout = 8.0
    a, c = cluster.start_nodes(2, node_timeout=timeout)
    watcher = await arrive(a, "text", [], name="watcher")
    victim = await arrive(c, "text", [watcher], name="victim")
    mutee = await arrive(c, "json", [watcher, victim], name="mutee")

    c.signal(signal.SIGSTOP)
    try:
        await anyio.sleep(timeout / 2)
        kicked = await anyio.to_thread.run_sync(a.admin, "kick", "victim", "--reason", "spam")
        assert kicked.returncode == 0, kicked
        # The admin is told that the node is silent and when the kick takes effect.
        assert kicked.stdout.startswith(f"kicked victim: its node {c.id} has been silent"), kicked
        assert "takes effect when it answers again" in kicked.stdout, kicked
        muted = await anyio.to_thread.run_sync(a.admin, "mute", "mutee", "--for", "10m")
        assert muted.returncode == 0, muted
        assert muted.stdout.startswith("muted mutee until "), muted  # a guest
        assert "the mute takes effect when it answers again" in muted.stdout, muted
        # The node is declared dead: its users go offline for everyone.
        await expect_all(watcher, [offline(victim), offline(mutee)], timeout=timeout * 2 + SLACK)
    finally:
        c.signal(signal.SIGCONT)

    # Back: the victim is told it was kicked and goes; it never comes back online.
    line = await victim.client.line_matching("removed by an administrator", TIMEOUT + SLACK)
    assert line == "you were removed by an administrator: spam\n"
    assert await victim.client.eof()
    await expect_all(watcher, [online(mutee)], timeout=TIMEOUT + SLACK)
    await drain(mutee, quiet=0.5)
    # The muted user is back, and muted.
    reply = await mutee.request(type="message", text="am I muted?")
    assert reply["type"] == "error" and reply["code"] == "muted", reply
    await check_who(watcher, [watcher, mutee])
    await watcher.silent(1.0)
    result = await anyio.to_thread.run_sync(a.admin, "who", "--json")
    assert sorted(u["name"] for u in json.loads(result.stdout)) == ["mutee", "watcher"]


async def test_redis_out_of_memory_is_said_counted_and_reaps_no_one(cluster: Cluster) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    # Beats every 0.8 s: room to pause a node for a while without it being dead.
    timeout = 4.0
    a = cluster.start_node("--metrics", metrics, node_timeout=timeout)
    b = cluster.start_node(node_timeout=timeout)
    alex = await arrive(a, "text", [], name="alex")
    bea = await arrive(b, "json", [alex], name="bea")
    everyone = [alex, bea]

    r = cluster.redis.client()
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", used + 2_000_000)
    with pytest.raises(redis.exceptions.OutOfMemoryError):  # noqa: PT012 - fill it
        for i in range(1000):
            r.set(f"fill:{i}", "x" * 100_000)
    # Freeing the refused write's own buffer would take Redis back under the limit:
    # keep it over, as a Redis filled by traffic stays.
    r.config_set("maxmemory", int(r.info("memory")["used_memory"]) - 500_000)
    full_since = time.monotonic()

    # Told what happened: Redis is full (not "cannot reach"), and nothing was sent.
    await alex.client.send("said while full\n")
    line = await alex.line()
    assert line in (f"{FULL_LINE}\n", f"{FULL_LINE}; the message was not sent\n"), line
    for node in (a, b):
        await anyio.to_thread.run_sync(node.wait_log, "is full (maxmemory reached)", TIMEOUT)
    for command in ("again", "to|bea|psst", "rename|zed", "who"):
        await alex.client.send(command + "\n")
        assert await alex.line() == f"{FULL_LINE}\n", command
    reply = await bea.request(type="message", text="full?", id="m")
    assert (reply["type"], reply["code"]) == ("error", "unavailable"), reply
    assert reply["message"] == "the chat is unavailable: the cluster's Redis is full", reply
    newcomer = await LineClient.connect(b.address)
    assert await newcomer.line() == "the chat is unavailable: the cluster's Redis is full\n"
    assert await newcomer.eof()
    status, health = await anyio.to_thread.run_sync(healthz, metrics)
    assert (status, health["reason"]) == (503, "cluster_redis_full"), health
    stats = json.loads((await anyio.to_thread.run_sync(a.admin, "stats", "--json")).stdout)
    assert stats["cluster"]["problem"] == "the cluster's Redis is full", stats["cluster"]
    assert stats["cluster"]["redis_full"] == 1, stats["cluster"]

    # Full for longer than --node-timeout: every node's beats were refused meanwhile.
    while time.monotonic() - full_since < timeout * 1.5:
        await alex.client.send("still full?\n")
        assert await alex.line() == f"{FULL_LINE}\n"
        await anyio.sleep(0.2)
    # Node b is paused as Redis gets room again (less than the timeout): node a
    # registers again first and must not take b's refused beats for silence.
    b.signal(signal.SIGSTOP)
    try:
        r.config_set("maxmemory", 0)
        await anyio.sleep(timeout * 0.4)
    finally:
        b.signal(signal.SIGCONT)
    for node in (a, b):
        await anyio.to_thread.run_sync(node.wait_log, "cluster: Redis has room again", 20)
        # One line for the outage, none for each command refused.
        assert node.log_count("is full (maxmemory reached)") == 1, node.log()
        assert node.log_count("Redis refused") == 0, node.log()

    # Nobody was reaped: after several timeouts, nobody went offline, who is whole.
    await anyio.sleep(timeout * 2)
    for user in everyone:
        lines = await drain(user, quiet=0.5)
        assert not [x for x in lines if "offline" in x], (user.name, lines)
    for user in everyone:
        await check_who(user, everyone)
    await say(alex, "room again", everyone)
    assert (await anyio.to_thread.run_sync(healthz, metrics))[0] == 200
    samples = await anyio.to_thread.run_sync(cluster_metrics, metrics)
    assert samples["imkit_cluster_redis_full_total"] == 1, samples
    assert samples["imkit_cluster_outages_total"] == 1, samples


async def test_an_evicting_maxmemory_policy_is_warned_of_at_start_and_when_it_changes(
    cluster: Cluster,
) -> None:
    r = cluster.redis.client()
    r.config_set("maxmemory-policy", "allkeys-lru")
    node = cluster.start_node()
    warning = "cluster: Redis evicts keys when it is full (maxmemory-policy "
    line = node.wait_log(warning + "allkeys-lru)")
    assert " WARNING " in line, line
    r.config_set("maxmemory-policy", "noeviction")
    await anyio.to_thread.run_sync(node.wait_log, "Redis no longer evicts keys", TIMEOUT)
    r.config_set("maxmemory-policy", "volatile-lru")
    await anyio.to_thread.run_sync(node.wait_log, warning + "volatile-lru)", TIMEOUT)
    await anyio.sleep(cluster.node_timeout)  # several beats: logged once per change
    assert node.log_count(warning) == 2, node.log()
    assert node.log_count("Redis no longer evicts keys") == 1, node.log()


async def test_accounts_lost_with_redis_are_not_blamed_on_an_administrator(
    cluster: Cluster,
) -> None:
    a = cluster.start_node()
    guest = await arrive(a, "text", [])
    sam = await arrive(a, "json", [guest])
    await add_account(a, "sam")
    await log_in(sam, "sam", [guest])
    cluster.redis.stop()
    cluster.redis.start()  # empty
    bye = await sam.client.json_of_type("bye", TIMEOUT + SLACK)
    assert bye == {
        "type": "bye",
        "reason": "data_lost",
        "message": DATA_LOST,
    }


async def test_kick_says_once_why_redis_cannot_be_used(cluster: Cluster) -> None:
    a = cluster.start_node()
    await arrive(a, "text", [], name="alex")
    cluster.redis.stop()
    await anyio.to_thread.run_sync(a.wait_log, "cluster: cannot reach Redis", TIMEOUT)
    result = await anyio.to_thread.run_sync(a.admin, "kick", "alex")
    assert result.returncode == 1, result
    assert result.stderr.startswith(
        f"Error: this node cannot reach the cluster's Redis at {cluster.redis.url}"
    ), result.stderr
    assert result.stderr.count("reach") == 1 and "no answer" not in result.stderr, result.stderr
