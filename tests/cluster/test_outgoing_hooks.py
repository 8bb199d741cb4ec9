"""Outgoing webhooks on two nodes through a real redis-server (docs/integrations.md,
"Outgoing webhooks"): both nodes have the same hooks (as both would read them from the
cluster's store), and only the node that published a message POSTs it: exactly one POST
per message, whichever node its sender is on.

One node's behaviour, retries and limits are tests/server/test_outgoing_hooks.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from imkit.rules.hooks import OutgoingHook, signature_matches
from imkit.rules.rooms import room_key
from imkit.server import Server, ServerConfig
from tests.support import LineClient, joined, json_client, run_server
from tests.support.cluster import RedisServer
from tests.support.hook_receiver import Answer, Received, Receiver, hook, provider, receiving, until


async def member(server: Server, name: str, room: str = "#builds") -> LineClient:
    client = await json_client(server.addresses[0], name)
    assert (await client.request(type="join", room=room))["type"] == "joined"
    return client


async def heard(client: LineClient, text: str, *own: str) -> dict[str, Any]:
    """The next message event with ``text``, past the echoes of the client's ``own``
    messages (on a cluster its echo comes back through Redis, before or after its ok,
    and a request skips what came before its ok)."""
    while True:
        message = await client.json_of_type("message")
        if message["text"] == text:
            return message
        assert message["text"] in own, message


async def test_a_room_message_is_posted_once_by_the_node_it_was_sent_to(
    redis_server: RedisServer,
) -> None:
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(receiving(Receiver()))
        ci = hook(receiver.url)
        one, two = await stack.enter_async_context(_nodes(redis_server, ci))
        alex = await member(one, "alex")  # both nodes read #builds' stream
        sam = await member(two, "sam")
        reply = await sam.request(type="message", room="#builds", text="from two")
        assert reply["type"] == "ok"
        assert (await alex.json_of_type("message"))["text"] == "from two"
        (request,) = await receiver.until(1)
        assert request.json["msgid"] == reply["msgid"]
        assert request.json["name"] == "sam" and request.json["room"] == "#builds"
        header = request.headers["x-imkit-signature"]
        assert signature_matches(ci.secret, request.body, header)
        await until(lambda: _delivered(one, two) == (0, 1))

        # A text-mode sender on the other node: its node posts it, once.
        text = await joined(one.addresses[0], "tex")
        await text.send("join|#builds\n")
        await text.line_matching(r"you have joined #builds")
        await text.send("to|#builds|from one\n")
        assert (await heard(sam, "from one", "from two"))["from"] == "tex"
        await receiver.until(2)
        await anyio.sleep(0.5)  # a duplicate from the other node would come by now
        assert receiver.texts() == ["from two", "from one"]
        await until(lambda: _delivered(one, two) == (1, 1))


async def test_a_lobby_message_is_posted_once(redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(receiving(Receiver()))
        lobby = hook(receiver.url, room=room_key(ServerConfig().lobby), name="lobbyist")
        one, two = await stack.enter_async_context(_nodes(redis_server, lobby))
        alex = await json_client(one.addresses[0], "alex")
        sam = await json_client(two.addresses[0], "sam")
        reply = await sam.request(type="message", text="hello all")
        assert reply["type"] == "ok"
        assert (await alex.json_of_type("message"))["text"] == "hello all"
        (request,) = await receiver.until(1)
        assert request.json["msgid"] == reply["msgid"]
        assert request.json["room"] == ServerConfig().lobby
        await anyio.sleep(0.5)
        assert len(receiver.requests) == 1
        assert two.deliveries.status("lobbyist").delivered == 1
        assert one.deliveries.status("lobbyist").delivered == 0


async def test_a_reply_reaches_both_nodes_and_does_not_trigger(redis_server: RedisServer) -> None:
    def answer(request: Received) -> Answer:
        if request.json["text"] == "ping":
            return 200, json.dumps({"text": "pong"}).encode()
        return 204, b""

    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(receiving(Receiver(answer=answer)))
        pingbot = hook(receiver.url, name="pingbot")
        one, two = await stack.enter_async_context(_nodes(redis_server, pingbot))
        # The poster the coordinator wires is post_as_hook; here a client named as the
        # hook, on the first node, posts for both nodes' engines.
        bot = await member(one, "pingbot")

        async def poster(hook: OutgoingHook, text: str) -> None:
            reply = await bot.request(type="message", room=hook.room, text=text)
            assert reply["type"] == "ok"

        one.deliveries.poster = two.deliveries.poster = poster
        alex = await member(one, "alex")
        sam = await member(two, "sam")
        assert (await sam.request(type="message", room="#builds", text="ping"))["type"] == "ok"
        seen = [await alex.json_of_type("message") for _ in range(2)]
        assert [(m["from"], m["text"]) for m in seen] == [("sam", "ping"), ("pingbot", "pong")]
        assert (await heard(sam, "pong", "ping"))["from"] == "pingbot"
        assert (await alex.request(type="message", room="#builds", text="again"))["type"] == "ok"
        await receiver.until(2)
        await anyio.sleep(0.3)
        assert receiver.texts() == ["ping", "again"]


def _delivered(one: Server, two: Server) -> tuple[int, int]:
    return one.deliveries.status("ci").delivered, two.deliveries.status("ci").delivered


@asynccontextmanager
async def _nodes(
    redis_server: RedisServer, *hooks: OutgoingHook
) -> AsyncIterator[tuple[Server, Server]]:
    """Two nodes of a cluster of this test's own, both with ``hooks``."""
    name = f"h{uuid.uuid4().hex[:10]}"
    config = ServerConfig(port=0, idle_timeout=0, cluster=redis_server.url, cluster_name=name)
    async with run_server(config) as one, run_server(config) as two:
        for server in (one, two):
            server.deliveries.provider = provider(*hooks)
            server.deliveries.backoff = 0.05
        yield one, two
