"""Cluster mode through failures (issue 12, points 5 to 7): a node killed with -9,
stopped with SIGTERM, paused past --node-timeout and resumed; Redis shut down and
restarted empty while users chat; Redis dropping a node's reader connection during
traffic. Real nodes, a real redis-server, the timings shortened through the options."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import anyio

from imkit.client import admin as admin_client
from tests.support import TIMEOUT, LineClient, free_port
from tests.support.cluster import (
    MISSED_LINE,
    SLACK,
    UNAVAILABLE_BYE,
    UNAVAILABLE_LINE,
    Cluster,
    User,
    arrive,
    check_who,
    cluster_metrics,
    drain,
    expect_all,
    healthz,
    offline,
    online,
    record_numbered,
    rename,
    say,
    who_is_there,
)

MAY_NOT_SENT = "; the message may not have been sent\n"


def _is_rename(line: str) -> bool:
    return line.startswith("{") and json.loads(line).get("type") == "rename"


async def test_a_killed_node_s_users_go_offline_once_everywhere(cluster: Cluster) -> None:
    a, b, c = cluster.start_nodes(3)
    alex = await arrive(a, "text", [], name="alex")
    ann = await arrive(a, "json", [alex], name="ann")
    bob = await arrive(b, "text", [alex, ann], name="bob")
    bea = await arrive(b, "json", [alex, ann, bob], name="bea")
    cid = await arrive(c, "text", [alex, ann, bob, bea], name="cid")
    survivors = [bob, bea, cid]

    killed_at = time.monotonic()
    a.signal(signal.SIGKILL)
    a.process.proc.wait()
    limit = cluster.node_timeout * 1.4 + SLACK
    for user in survivors:
        await expect_all(user, [offline(alex), offline(ann)], timeout=limit)
    took = time.monotonic() - killed_at
    assert took < limit, took

    # The names are free, the users gone from every who, the node from the stats.
    for user in survivors:
        await check_who(user, survivors)
    await rename(bea, "ALEX", [bob, cid])
    await rename(cid, "Ann", [bob, bea])
    result = await anyio.to_thread.run_sync(b.admin, "stats", "--json")
    nodes = {n["id"] for n in json.loads(result.stdout)["cluster"]["nodes"]}
    assert nodes == {b.id, c.id}
    # Each offline line came once: nothing more, a few beats later either.
    await anyio.sleep(cluster.node_timeout)
    for user in survivors:
        await user.silent(1.0)


async def test_a_node_stopped_with_sigterm_tells_everyone_at_once(cluster: Cluster) -> None:
    # A long --node-timeout: the offline lines cannot come from reaping a silent node.
    a, b = cluster.start_nodes(2, node_timeout=60)
    alex = await arrive(a, "text", [], name="alex")
    ann = await arrive(a, "json", [alex], name="ann")
    bob = await arrive(b, "text", [alex, ann], name="bob")
    bea = await arrive(b, "json", [alex, ann, bob], name="bea")

    stopped_at = time.monotonic()
    a.signal(signal.SIGTERM)
    assert await alex.client.line_matching("shutting down") == "the server is shutting down\n"
    assert await ann.client.json_of_type("bye") == {
        "type": "bye",
        "reason": "shutdown",
        "message": "the server is shutting down",
    }
    for user in (bob, bea):
        await expect_all(user, [offline(alex), offline(ann)], timeout=8)
    assert time.monotonic() - stopped_at < 8
    assert await anyio.to_thread.run_sync(a.process.proc.wait) == 0
    for user in (bob, bea):
        await check_who(user, [bob, bea])
        await user.silent()
    result = await anyio.to_thread.run_sync(b.admin, "stats", "--json")
    assert [n["id"] for n in json.loads(result.stdout)["cluster"]["nodes"]] == [b.id]


async def test_a_paused_node_comes_back_and_yields_the_names_taken_meanwhile(
    cluster: Cluster,
) -> None:
    a, b = cluster.start_nodes(2)
    alex = await arrive(a, "text", [], name="alex")
    ann = await arrive(a, "json", [alex], name="ann")
    kim = await arrive(a, "text", [alex, ann], name="kim")
    bob = await arrive(b, "text", [alex, ann, kim], name="bob")
    bea = await arrive(b, "json", [alex, ann, kim, bob], name="bea")
    paused = [alex, ann, kim]

    a.signal(signal.SIGSTOP)
    try:
        limit = cluster.node_timeout * 1.4 + SLACK
        for user in (bob, bea):
            await expect_all(user, [offline(u) for u in paused], timeout=limit)
        await check_who(bob, [bob, bea])
        # Meanwhile others take two of the paused users' names (any case).
        thief = await arrive(b, "text", [bob, bea], name="ALEX")
        robber = await arrive(b, "json", [bob, bea, thief], name="Ann")
    finally:
        a.signal(signal.SIGCONT)
    watchers = [bob, bea, thief, robber]

    # The paused node's users whose names were taken get their default names, and are
    # told; kim keeps its name.
    line = await alex.client.line_matching("was taken", timeout=TIMEOUT + SLACK)
    assert line == (
        f"your name alex was taken while your server was cut off from the chat;"
        f" you are now {alex.addr}\n"
    )
    with anyio.fail_after(TIMEOUT + SLACK):
        while True:
            event = await ann.client.json_of_type("rename")
            if event.get("reason") is not None:
                break
    assert event == {
        "type": "rename",
        "old": "ann",
        "new": ann.addr,
        "addr": ann.addr,
        "reason": "conflict",
    }
    alex.name, ann.name = alex.addr, ann.addr
    # Everyone who saw them go offline sees each of them come back, with its final name.
    for user in watchers:
        await expect_all(user, [online(u) for u in paused], skip=_is_rename)

    everyone = [alex, ann, kim, bob, bea, thief, robber]
    for user in (alex, ann, kim):  # what the paused node's users saw meanwhile: not checked
        await drain(user, quiet=0.5)
    for user in everyone:
        assert sorted(await who_is_there(user)) == sorted((u.name, u.addr) for u in everyone)
    # And the chat goes on for all of them.
    await say(kim, "welcome back", everyone)
    await say(robber, "sorry", everyone)
    await thief.client.send(f"to|{alex.addr}|yours again?\n")
    assert await alex.line() == "ALEX say: yours again?\n"
    await rename(alex, "alex2", [u for u in everyone if u is not alex])
    for user in everyone:
        await user.silent()


async def test_redis_down_then_restarted_empty_while_users_chat(cluster: Cluster) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    a, b = cluster.start_node("--metrics", metrics), cluster.start_node()
    assert (await anyio.to_thread.run_sync(healthz, metrics))[0] == 200
    alex = await arrive(a, "text", [], name="alex")
    ann = await arrive(a, "json", [alex], name="ann")
    bob = await arrive(b, "text", [alex, ann], name="bob")
    bea = await arrive(b, "json", [alex, ann, bob], name="bea")
    everyone = [alex, ann, bob, bea]
    before = await say(ann, "before the outage", everyone)
    assert before is not None

    cluster.redis.stop()
    # At once: a message is refused, whether or not its node has noticed yet (then the
    # line also says that it may not have been sent).
    await bob.client.send("said as Redis goes\n")
    line = await bob.line()
    assert line in (UNAVAILABLE_LINE, UNAVAILABLE_LINE[:-1] + MAY_NOT_SENT), line
    for node in (a, b):
        await anyio.to_thread.run_sync(node.wait_log, "cluster: cannot reach Redis", TIMEOUT)
    # Every command that needs Redis is refused, in both modes; nobody is disconnected.
    for command in ("hello while down", "to|bob|psst", "rename|zed", "who"):
        await alex.client.send(command + "\n")
        assert await alex.line() == UNAVAILABLE_LINE, command
    requests: list[dict[str, Any]] = [
        {"type": "message", "text": "hello while down"},
        {"type": "message", "text": "psst", "to": "alex"},
        {"type": "rename", "name": "zed"},
        {"type": "who"},
    ]
    for number, request in enumerate(requests):
        reply = await bea.request(**request, id=number)
        assert (reply["type"], reply["id"], reply["code"]) == ("error", number, "unavailable")
        assert "Redis" in reply["message"], reply
        assert not reply.get("delivered", False), reply  # refused before anyone had it
    # A newcomer is told and closed.
    newcomer = await LineClient.connect(a.address)
    assert await newcomer.line() == UNAVAILABLE_BYE
    assert await newcomer.eof()
    # The admin's who: this node's users only, marked partial, exit 1.
    result = await anyio.to_thread.run_sync(a.admin, "who", "--json")
    assert result.returncode == 1, result
    assert [u["name"] for u in json.loads(result.stdout)] == ["alex", "ann"]
    assert result.stderr == (
        "imkit who: only this node's users: its server cannot reach the cluster's Redis\n"
    )
    reply = await admin_client.request(
        cluster.folder / "imkit" / f"admin-{a.port}.sock", {"type": "who"}
    )
    assert reply["partial"] is True, reply
    assert [u["name"] for u in reply["users"]] == ["alex", "ann"]
    stats = json.loads((await anyio.to_thread.run_sync(b.admin, "stats", "--json")).stdout)
    assert stats["cluster"]["problem"], stats["cluster"]
    status, health = await anyio.to_thread.run_sync(healthz, metrics)
    assert status == 503 and health["reason"] == "cluster_unavailable", health
    down = await anyio.to_thread.run_sync(cluster_metrics, metrics)
    assert down["imkit_cluster_available"] == 0 and down["imkit_cluster_outages_total"] == 1
    for node in (a, b):
        assert node.log_count("cluster: cannot reach Redis") == 1, node.log()

    cluster.redis.start()  # the same port, empty
    restarted = time.monotonic()
    for node in (a, b):
        await anyio.to_thread.run_sync(node.wait_log, "cluster: Redis is back after", 20)
    # Within a few seconds: who is right on every node.
    with anyio.fail_after(15):
        for user in (ann, bea):
            while True:
                reply = await user.request(type="who", id="who")
                if reply["type"] == "users" and len(reply["users"]) == 4:
                    break
                await anyio.sleep(0.3)
            assert sorted((u["name"], u["addr"]) for u in reply["users"]) == sorted(
                (u.name, u.addr) for u in everyone
            )
    assert time.monotonic() - restarted < 10
    # Everyone was told once that messages may have been missed; nobody went offline.
    for user in everyone:
        lines = await drain(user, quiet=1.5)
        if user.mode == "text":
            assert lines.count(MISSED_LINE) == 1, (user.name, lines)
            assert not [line for line in lines if line.endswith(":user offline\n")], lines
        else:
            events = [json.loads(line) for line in lines]
            notices = [e for e in events if e["type"] == "notice"]
            assert len(notices) == 1, (user.name, events)
            assert notices[0]["code"] == "messages_missed", notices
            assert isinstance(notices[0]["message"], str) and notices[0]["message"]
            assert not [e for e in events if e.get("status") == "offline"], events

    # Messages flow again, with msgids after the ones before the outage.
    after = await say(bea, "after the outage", everyone)
    assert after is not None and after > before
    await say(alex, "from node one", everyone)
    # One order of arrival, the same on every node.
    order = await _arrival_order(alex, everyone)
    for user in everyone:
        await check_who(user, order)
        await user.silent()
    for node in (a, b):
        stats = json.loads((await anyio.to_thread.run_sync(node.admin, "stats", "--json")).stdout)
        assert stats["cluster"]["data_lost"] == 1, stats["cluster"]
        assert stats["cluster"]["problem"] is None, stats["cluster"]
        assert node.log_count("cluster: cannot reach Redis") == 1
        assert node.log_count("cluster: Redis is back after") == 1
        lost = node.wait_log("cluster: Redis lost the chat's data")
        assert " ERROR " in lost and node.log_count("cluster: Redis lost the chat") == 1
    assert (await anyio.to_thread.run_sync(healthz, metrics))[0] == 200
    back = await anyio.to_thread.run_sync(cluster_metrics, metrics)
    assert back == {
        "imkit_cluster_available": 1,
        "imkit_cluster_outages_total": 1,
        "imkit_cluster_redis_full_total": 0,
        "imkit_cluster_data_lost_total": 1,
        "imkit_cluster_messages_missed_total": 1,
    }, back


async def _arrival_order(user: User, everyone: list[User]) -> list[User]:
    """``everyone`` in the order ``user``'s who gives (only the set is checked)."""
    listed = await who_is_there(user)
    by_addr = {u.addr: u for u in everyone}
    assert sorted(listed) == sorted((u.name, u.addr) for u in everyone)
    return [by_addr[addr] for _, addr in listed]


async def test_a_dropped_reader_connection_loses_nothing(cluster: Cluster) -> None:
    a, b, c = cluster.start_nodes(3)
    sender = await arrive(a, "text", [], name="sender")
    users = [sender]
    for node in (b, c):
        for mode in ("text", "json"):
            users.append(await arrive(node, mode, list(users), name=f"{mode}{node.port}"))
    count = 600
    seen: dict[str, list[tuple[str, int]]] = {user.name: [] for user in users}
    kills: list[int] = []

    async def publish() -> None:
        for start in range(0, count, 20):
            await sender.client.send("".join(f"n {k}\n" for k in range(start, start + 20)))
            await anyio.sleep(0.05)

    async def drop_readers() -> None:
        await anyio.sleep(0.2)
        # No node uses PUB/SUB: this drops nothing.
        assert await anyio.to_thread.run_sync(cluster.redis.kill_clients, "pubsub") == 0
        for node in (b, c, b, c, b, c):
            name = f"imkit-reader-{node.id}"
            kills.append(await anyio.to_thread.run_sync(cluster.redis.kill_clients_named, name))
            await anyio.sleep(0.25)

    async with anyio.create_task_group() as tg:
        for user in users:
            tg.start_soon(record_numbered, user, count, seen[user.name])
        tg.start_soon(publish)
        tg.start_soon(drop_readers)

    assert sum(kills) >= 3, kills  # the readers were there to be dropped
    for user in users:
        assert seen[user.name] == [("sender", k) for k in range(count)], user.name
        await user.silent()
    for node in (b, c):
        names = [entry.get("name") for entry in cluster.redis.clients()]
        assert f"imkit-reader-{node.id}" in names  # it reconnected
