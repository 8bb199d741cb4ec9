"""Incoming webhooks on a cluster of two ``imkit serve`` processes (docs/integrations.md):
a hook added with the real ``imkit hook add`` on one node is posted to on the other's
``--hooks`` port with the real ``curl``, a member on the first node sees it; ``imkit
hook list`` and ``remove`` on either node see the same hooks (Redis' ``P:hooks``); and
while Redis is down a POST is answered 503, never 200."""

from __future__ import annotations

import json
import re

import anyio

from tests.support import free_port, joined
from tests.support.cluster import Cluster
from tests.support.hooks import post_json


async def test_a_hook_added_on_one_node_posts_through_the_other(cluster: Cluster) -> None:
    hooks_port = free_port()
    one = cluster.start_node("--web", f"127.0.0.1:{free_port()}")
    two = cluster.start_node("--hooks", f"127.0.0.1:{hooks_port}")
    assert one.admin("room", "add", "#ops").returncode == 0
    made = one.admin("hook", "add", "#ops", "--name", "ci")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == "incoming hook ci added to #ops"
    key = re.fullmatch(r"http://127\.0\.0\.1:\d+/hooks/(\S+)", lines[1])
    assert key is not None, made.stdout
    url = f"http://127.0.0.1:{hooks_port}/hooks/{key.group(1)}"
    two.wait_log("hooks on http://")

    member = await joined(one.address, "tina")
    await member.send("join|#ops\n")
    await member.line_matching(r"^#ops \* you have joined #ops")
    answer = await post_json(url, {"text": "backup done\nin 42 s"})
    assert answer.status == 200, answer
    assert await member.line_matching(r"^#ops \[") == "#ops [webhook]ci:backup done | in 42 s\n"

    listed = json.loads(two.admin("hook", "list", "--json").stdout)
    assert [(h["name"], h["kind"], h["room"]) for h in listed] == [("ci", "incoming", "#ops")]
    assert key.group(1) not in two.admin("hook", "list").stdout
    for node in (one, two):  # the key is never logged, by either node
        assert key.group(1) not in node.log()

    assert two.admin("hook", "remove", "ci").stdout == "hook ci removed\n"
    gone = await post_json(url, {"text": "after"})
    assert gone.status == 404
    assert await member.silent()


async def test_while_redis_is_down_a_post_is_answered_503(cluster: Cluster) -> None:
    hooks_port = free_port()
    node = cluster.start_node("--hooks", f"127.0.0.1:{hooks_port}")
    assert node.admin("room", "add", "#ops").returncode == 0
    made = node.admin("hook", "add", "#ops")
    url = made.stdout.splitlines()[1]
    assert url.startswith(f"http://127.0.0.1:{hooks_port}/hooks/")
    assert (await post_json(url, {"text": "up"})).status == 200
    cluster.redis.stop()
    await anyio.to_thread.run_sync(node.wait_log, "cluster: cannot reach Redis", 15)
    down = await post_json(url, {"text": "down"})
    assert down.status == 503, down
    assert down.body.startswith("the hooks cannot be read now") or "Redis" in down.body, down
