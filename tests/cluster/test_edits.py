"""Deleting and editing a message in a cluster (docs/integrations.md, "Delete and
edit") with real `imkit serve` processes on a real redis-server: what Redis keeps (the
entry gone, the edit in the edits hash), every node's history and the `--replay` of the
node that did not make the change. The behaviour on both backends is in
tests/behaviour/test_edits.py."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import anyio

from tests.support import LineClient, json_client
from tests.support.cluster import Cluster, add_account


async def test_redis_keeps_the_change_and_every_node_serves_it(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--replay", "10")
    await add_account(one, "alex", "alex-secret")
    alex = await json_client(one.address, "guest")
    login = await alex.request(type="login", name="alex", password="alex-secret")
    assert login["type"] == "ok"
    watcher = await json_client(two.address, "watcher")
    typo = await alex.request(type="message", text="deploy faild")
    secret = await alex.request(type="message", text="password hunter2")
    assert (await alex.request(type="edit", msgid=typo["msgid"], text="deploy failed"))[
        "type"
    ] == "ok"
    assert (await alex.request(type="delete", msgid=secret["msgid"]))["type"] == "ok"
    assert (await watcher.json_of_type("edited"))["msgid"] == typo["msgid"]
    assert (await watcher.json_of_type("deleted"))["msgid"] == secret["msgid"]

    redis = cluster.redis.client(decode_responses=True)
    hist = f"{cluster.name}:hist"
    entries: Any = redis.xrange(hist)
    assert [fields["t"] for _, fields in entries] == ["deploy faild"]  # the edit lies over
    number = int(typo["msgid"])
    raw: Any = redis.hget(f"{hist}:edits", f"{number // 1000}-{number % 1000}")
    assert json.loads(raw)["t"] == "deploy failed"

    for node in (one, two):
        shown = await anyio.to_thread.run_sync(partial(node.admin, "history", "--json"))
        messages = json.loads(shown.stdout)["messages"]
        assert [(m["text"], "edited" in m) for m in messages] == [("deploy failed", True)]
    # Node two's replay (kept in its memory from the events) follows too.
    late = await LineClient.connect(two.address)
    await late.line_matching("user is online")
    past = await late.line_matching("^past ")
    assert re.fullmatch(r"past \S+ edited \[[^]]+\]alex:deploy failed\n", past), past
    assert await late.silent(0.5)
