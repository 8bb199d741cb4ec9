"""Incoming webhooks (docs/integrations.md) on one node and on two: the real ``curl``
POSTs to a node's web port, and the room's members (text, JSON, IRC; on two nodes on
either node) see the message, marked as a bot in JSON and in history.

The hooks are added through the admin requests of the first node; on two nodes every
POST goes to the *other* node's web port, so a hook added on one node is used on the
other, and the message crosses Redis to reach its members."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from imkit.server import Server, ServerConfig
from imkit.server.hooks import HookRate
from tests.support import LineClient, ask, joined, json_client, run_server
from tests.support.cluster import RedisServer
from tests.support.hooks import ALERTMANAGER, GRAFANA, curl, post_json
from tests.support.irc import IrcClient, irc_address

WEB = {"port": 0, "idle_timeout": 0, "web": "127.0.0.1:0", "irc": ("127.0.0.1:0",)}


@pytest.fixture(params=["one node", "two nodes"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[Server]]:
    """One server, or two through Redis, each with a web port and an IRC port."""
    async with AsyncExitStack() as stack:
        if request.param == "one node":
            configs = [ServerConfig(**WEB)]  # type: ignore[arg-type]
        else:
            redis: RedisServer = request.getfixturevalue("shared_redis")
            name = f"h{uuid.uuid4().hex[:10]}"
            configs = [
                ServerConfig(**WEB, cluster=redis.url, cluster_name=name)  # type: ignore[arg-type]
                for _ in range(2)
            ]
        yield [await stack.enter_async_context(run_server(c)) for c in configs]


async def _hook(nodes: list[Server], room: str = "#builds", **fields: Any) -> str:
    """Register ``room``, add an incoming hook to it on the first node; the URL of the
    hook on the last node's web port."""
    assert (await ask(nodes[0], type="room_add", room=room))["type"] == "ok"
    made = await ask(nodes[0], type="hook_add", room=room, **fields)
    assert made["type"] == "ok", made
    key = made["key"]
    assert made["urls"] == [f"http://{nodes[0].web_addresses[0]}/hooks/{key}"]
    return f"http://{nodes[-1].web_addresses[0]}/hooks/{key}"


async def _json_member(server: Server, name: str, room: str = "#builds") -> LineClient:
    client = await json_client(server.addresses[0], name)
    assert (await client.request(type="join", room=room))["type"] == "joined"
    return client


async def test_curl_posts_into_the_room_and_every_kind_of_member_sees_it(
    nodes: list[Server],
) -> None:
    url = await _hook(nodes, name="deploybot")
    text = await joined(nodes[0].addresses[0], "tina")
    await text.send("join|#builds\n")
    await text.line_matching(r"^#builds \* you have joined #builds")
    member = await _json_member(nodes[-1], "jo")
    irc = IrcClient(await LineClient.connect(irc_address(nodes[0])), "ivy")
    await irc.send("NICK ivy", "USER ivy 0 * :Ivy")
    await irc.expect(r" 001 ivy ")
    await irc.send("JOIN #builds")
    await irc.expect(r" 366 ivy #builds ")
    outsider = await json_client(nodes[-1].addresses[0], "olga")  # in the lobby only

    answer = await post_json(url, {"text": "deploy 42 ok", "channel": "#elsewhere"})
    assert (answer.status, answer.body) == (200, "ok\n")
    msgid = answer.headers["x-imkit-msgid"]

    line = await text.line_matching(r"^#builds \[")
    assert line == "#builds [webhook]deploybot:deploy 42 ok\n"
    event = await member.json_of_type("message")
    assert (event["from"], event["text"], event["room"]) == ("deploybot", "deploy 42 ok", "#builds")
    assert (event["bot"], event["msgid"], event["account"]) == (True, msgid, None)
    said = await irc.expect(r" PRIVMSG #builds ")
    assert said.startswith(":deploybot!") and said.endswith(" PRIVMSG #builds :deploy 42 ok")
    page = await member.request(type="history", room="#builds")
    assert [(m["from"], m["text"], m.get("bot"), m["msgid"]) for m in page["messages"]] == [
        ("deploybot", "deploy 42 ok", True, msgid)
    ]
    assert await outsider.silent()  # a room's message: never the lobby's


async def test_alertmanager_and_grafana_payloads_are_posted(nodes: list[Server]) -> None:
    url = await _hook(nodes, name="alerts")
    member = await _json_member(nodes[-1], "oncall")
    assert (await post_json(url, ALERTMANAGER)).status == 200
    first = await member.json_of_type("message")
    assert first["from"] == "alerts"  # its username is ignored: not --allow-username
    assert first["text"] == (
        "[FIRING:1] InstanceDown (node-exporter prod) "
        "<http://alertmanager.example:9093/#/alerts?receiver=imkit>"
    )
    form = "payload=" + quote(json.dumps(GRAFANA))
    answer = await curl(url, form, "application/x-www-form-urlencoded")
    assert answer.status == 200
    second = await member.json_of_type("message")
    assert second["text"].startswith("[FIRING:1] HighCPU (web-1) <http://grafana.example:3000/")
    assert " | - instance = web-1 | " in second["text"] and second["bot"] is True


async def test_every_refusal_has_its_status_and_reason(nodes: list[Server]) -> None:
    url = await _hook(nodes)
    member = await _json_member(nodes[-1], "jo")
    wrong = re.sub(r"/hooks/.*", "/hooks/" + "x" * 43, url)
    answers = [
        await post_json(wrong, {"text": "no"}),
        await curl(url, "{not json"),
        await post_json(url, {"text": "  "}),
        await post_json(url, {"username": "only"}),
        await curl(url, '{"text":"' + "y" * 70_000 + '"}'),
        await curl(url, "text=hi", "text/plain"),
        await curl(url, "", None, method="GET"),
    ]
    statuses = [a.status for a in answers]
    assert statuses == [404, 400, 400, 400, 413, 415, 405]
    assert answers[0].body == "no such hook (wrong key, or the hook was removed)\n"
    assert answers[1].body.startswith("the payload is not JSON")
    assert answers[3].body == "the payload has no text (nor attachments with any)\n"
    assert answers[4].body == "the body is over the limit of 65536 bytes\n"
    assert answers[6].headers["allow"] == "POST"
    assert await member.silent()
    assert (await ask(nodes[0], type="room_remove", room="#builds"))["type"] == "ok"
    gone = await post_json(url, {"text": "into nothing"})
    assert (gone.status, gone.body) == (404, "the hook's room #builds no longer exists\n")


async def test_a_hook_over_its_rate_limit_is_told_when_to_retry(nodes: list[Server]) -> None:
    url = await _hook(nodes, name="chatty")
    for server in nodes:  # fewer posts than the default 30, the same limiter
        server.hooks.rate = HookRate(burst=3, per_second=0.05)
    member = await _json_member(nodes[0], "jo")
    statuses = [(await post_json(url, {"text": f"n{n}"})).status for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await post_json(url, {"text": "again"})
    assert refused.status == 429 and refused.headers["retry-after"] == "20"
    assert refused.body == "hook chatty is over its rate limit: retry in 20s\n"
    assert [(await member.json_of_type("message"))["text"] for _ in range(3)] == [
        "n0",
        "n1",
        "n2",
    ]
    assert await member.silent()


async def test_a_username_is_taken_only_when_allowed_and_free(nodes: list[Server]) -> None:
    url = await _hook(nodes, name="ci", allow_username=True)
    assert (await ask(nodes[0], type="account_add", name="Sam", password="pw"))["type"] == "ok"
    member = await _json_member(nodes[-1], "tina")
    sent = []
    for username in ("release", "tina", "sam", "bad name", "CI"):
        sent.append((await post_json(url, {"text": username, "username": username})).status)
    assert sent == [200] * 5
    seen = [(await member.json_of_type("message"))["from"] for _ in range(5)]
    # someone online holds tina, an account has Sam, "bad name" is no name, CI is its own
    assert seen == ["release", "ci", "ci", "ci", "ci"]


async def test_a_removed_hook_stops_on_every_node(nodes: list[Server]) -> None:
    url = await _hook(nodes, name="brief")
    assert (await post_json(url, {"text": "once"})).status == 200
    listed = await ask(nodes[-1], type="hooks")
    assert [(h["name"], h["kind"], h["room"]) for h in listed["hooks"]] == [
        ("brief", "incoming", "#builds")
    ]
    assert "key" not in listed["hooks"][0] and "digest" not in listed["hooks"][0]
    assert (await ask(nodes[0], type="hook_remove", name="BRIEF"))["type"] == "ok"
    seen = [200]
    with anyio.fail_after(10):  # another node reads the hooks again within a second
        while seen[-1] == 200:
            await anyio.sleep(0.1)
            seen.append((await post_json(url, {"text": "again"})).status)
    assert seen[-1] == 404 and len(seen) <= 30, seen
    again = await ask(nodes[0], type="hook_remove", name="brief")
    assert again["code"] == "no_such_hook"
