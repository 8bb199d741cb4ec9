"""Outgoing webhooks on one server (docs/integrations.md, "Outgoing webhooks"): a real
in-process server whose engine is given its hooks through its provider (the interface
the store is wired to), and a real HTTP receiver on loopback.

The two-node case is tests/cluster/test_outgoing_hooks.py."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme

from imkit.protocol import ChatMessage
from imkit.rules.hooks import SIGNATURE_HEADER, OutgoingHook, signature_matches
from imkit.server import Server, ServerConfig
from imkit.server.hook_post import Posted, post_json
from imkit.server.outgoing_hooks import OutgoingDeliveries
from tests.support import LineClient, free_port, json_client, run_server
from tests.support.hook_receiver import Answer, Received, Receiver, hook, provider, receiving, until
from tests.support.metrics import Scraper, value


@asynccontextmanager
async def chat_with(*hooks: OutgoingHook, **settings: Any) -> AsyncIterator[Server]:
    """A server whose engine has ``hooks``, retrying fast (tests must not wait 15 s)."""
    async with run_server(ServerConfig(port=0, idle_timeout=0, **settings)) as server:
        engine = server.deliveries
        engine.provider = provider(*hooks)
        engine.backoff, engine.max_backoff, engine.timeout = 0.05, 0.2, 2.0
        yield server


async def member(server: Server, name: str, room: str = "#builds") -> LineClient:
    client = await json_client(server.addresses[0], name)
    assert (await client.request(type="join", room=room))["type"] == "joined"
    return client


async def say(client: LineClient, text: str, room: str = "#builds") -> str:
    """Send ``text`` to ``room``; its msgid (the ok: stored)."""
    reply = await client.request(type="message", room=room, text=text)
    assert reply["type"] == "ok", reply
    msgid = reply["msgid"]
    assert isinstance(msgid, str)
    return msgid


async def test_a_message_arrives_signed_with_its_fields() -> None:
    async with receiving(Receiver()) as receiver:
        ci = hook(receiver.url)
        async with chat_with(ci) as server:
            alex = await member(server, "alex")
            msgid = await say(alex, "héllo world")
            (request,) = await receiver.until(1)
            assert request.method == "POST" and request.target == "/hook?x=1"
            assert request.headers["content-type"] == "application/json"
            assert request.headers["x-imkit-hook"] == "ci"
            assert request.headers["x-imkit-delivery"] == msgid
            header = request.headers[SIGNATURE_HEADER.lower()]
            assert header.startswith("sha256=")
            assert signature_matches(ci.secret, request.body, header)
            assert not signature_matches("another secret", request.body, header)
            fields = request.json
            assert fields == {
                "hook": "ci",
                "room": "#builds",
                "name": "alex",
                "account": None,
                "text": "héllo world",
                "msgid": msgid,
                "time": fields["time"],
                "trigger": None,
            }
            assert fields["time"].endswith("Z")
            await until(lambda: server.deliveries.status("CI").delivered == 1)
            status = server.deliveries.status("ci")
            assert (status.queued, status.failed, status.last_error) == (0, 0, None)


async def test_only_messages_whose_first_word_is_a_trigger_are_posted() -> None:
    async with receiving(Receiver()) as receiver:
        deploy = hook(receiver.url, triggers=["Deploy", "!ship"])
        other_room = hook(receiver.url, room="#elsewhere", name="other")
        async with chat_with(deploy, other_room) as server:
            alex = await member(server, "alex")
            for text in ["hello", "DEPLOY prod", "deployment done", "  !Ship it", "say deploy"]:
                await say(alex, text)
            await say(alex, "deploy last")
            await receiver.until(3)
            await anyio.sleep(0.2)  # nothing else comes
            assert receiver.texts() == ["DEPLOY prod", "  !Ship it", "deploy last"]
            assert [r.json["trigger"] for r in receiver.requests] == ["deploy", "!ship", "deploy"]
            assert server.deliveries.status("other").delivered == 0


async def test_a_receiver_down_at_first_gets_the_message_once_it_is_up() -> None:
    port = free_port()  # nothing listens there yet: connection refused
    ci = hook(f"http://127.0.0.1:{port}/hook")
    async with chat_with(ci) as server:
        server.deliveries.attempts = 50
        alex = await member(server, "alex")
        msgid = await say(alex, "while you were out")
        await until(lambda: server.deliveries.status("ci").last_error is not None)
        status = server.deliveries.status("ci")
        assert status.queued == 1 and status.delivered == 0 and status.failed == 0
        assert status.last_error is not None and "refused" in status.last_error.lower()
        async with receiving(Receiver(port=port)) as receiver:
            (request,) = await receiver.until(1)
            assert request.json["msgid"] == msgid
            assert request.headers["x-imkit-delivery"] == msgid
            await until(lambda: server.deliveries.status("ci").delivered == 1)
        status = server.deliveries.status("ci")
        assert (status.queued, status.failed) == (0, 0)
        (counts,) = server.deliveries.counts()
        assert counts.retries >= 1


async def test_5xx_and_429_are_retried_and_other_4xx_are_not() -> None:
    answers = iter([(503, b"busy"), (429, b""), (200, b""), (404, b"no such hook")])

    def answer(request: Received) -> Answer:
        return next(answers)

    async with receiving(Receiver(answer=answer)) as receiver:
        async with chat_with(hook(receiver.url)) as server:
            alex = await member(server, "alex")
            first = await say(alex, "one")
            await say(alex, "two")
            requests = await receiver.until(4)
            ids = [r.headers["x-imkit-delivery"] for r in requests]
            assert ids[:3] == [first] * 3  # one message, tried three times
            assert requests[3].json["text"] == "two"
            await until(lambda: server.deliveries.status("ci").failed == 1)
            status = server.deliveries.status("ci")
            assert (status.delivered, status.failed, status.last_error) == (1, 1, "HTTP 404")
            await anyio.sleep(0.3)
            assert len(receiver.requests) == 4  # the 404 was not tried again


async def test_a_receiver_that_never_answers_does_not_delay_the_chat() -> None:
    async with receiving(Receiver(answer=lambda request: None)) as receiver:
        async with chat_with(hook(receiver.url)) as server:
            server.deliveries.timeout = 60.0  # a POST hangs longer than this test
            alex = await member(server, "alex")
            sam = await member(server, "sam")
            await receiver.until(0)
            started = time.monotonic()
            for n in range(20):
                await alex.send(
                    json.dumps({"type": "message", "room": "#builds", "text": f"m{n}"}) + "\n"
                )
            texts = [(await sam.json_of_type("message"))["text"] for _ in range(20)]
            assert texts == [f"m{n}" for n in range(20)]
            # Wide: the chat answers in milliseconds; a chat waiting for the hung POST
            # would take its 60 s.
            assert time.monotonic() - started < 10
            await receiver.until(1)
            status = server.deliveries.status("ci")
            assert status.queued == 20 and status.delivered == 0
            assert len(receiver.requests) == 1  # one at a time: the rest wait


async def test_a_full_queue_drops_the_oldest_and_counts_it_failed() -> None:
    release = anyio.Event()
    async with receiving(Receiver(hang=release)) as receiver:
        async with chat_with(hook(receiver.url)) as server:
            server.deliveries.queue_limit = 3
            alex = await member(server, "alex")
            await say(alex, "m0")
            await receiver.until(1)  # m0 is in flight, held by the receiver
            for n in range(1, 10):
                await say(alex, f"m{n}")
            status = server.deliveries.status("ci")
            assert (status.queued, status.failed, status.delivered) == (4, 6, 0)
            assert status.last_error is not None and "queue full" in status.last_error
            release.set()
            await until(lambda: server.deliveries.status("ci").delivered == 4)
            assert receiver.texts() == ["m0", "m7", "m8", "m9"]  # the oldest were dropped
            status = server.deliveries.status("ci")
            assert (status.queued, status.failed) == (0, 6)


async def test_a_reply_is_posted_to_the_room_as_the_hook_and_does_not_trigger_it() -> None:
    def answer(request: Received) -> Answer:
        if request.json["text"] == "ping":
            return 200, json.dumps({"text": "pong"}).encode()
        return 200, b"not json"

    async with receiving(Receiver(answer=answer)) as receiver:
        pingbot = hook(receiver.url, name="pingbot")
        async with chat_with(pingbot) as server:
            # The poster as the coordinator wires it posts through the incoming hooks'
            # post_as_hook; here, a client named as the hook posts it to the room.
            bot = await member(server, "pingbot")
            posted: list[tuple[str, str]] = []

            async def poster(hook: OutgoingHook, text: str) -> None:
                posted.append((hook.name, text))
                await say(bot, text, hook.room)

            server.deliveries.poster = poster
            alex = await member(server, "alex")
            await say(alex, "ping")  # its echo is read before the ok
            message = await alex.json_of_type("message")
            assert (message["from"], message["text"], message["room"]) == (
                "pingbot",
                "pong",
                "#builds",
            )
            assert posted == [("pingbot", "pong")]
            await say(alex, "again")
            await receiver.until(2)
            assert receiver.texts() == ["ping", "again"]  # pong, the hook's own, was not


async def test_bot_messages_notices_and_private_messages_never_trigger() -> None:
    async with receiving(Receiver()) as receiver:
        engine = OutgoingDeliveries(provider(hook(receiver.url)), backoff=0.05)
        async with anyio.create_task_group() as tg:
            await tg.start(engine.run)

            def message(text: str, **fields: Any) -> ChatMessage:
                fields.setdefault("room", "#Builds")
                return ChatMessage("alex", "addr", None, text, 1.0, "0000000000001000", **fields)

            engine.offer(message("from a hook", bot=True))
            engine.offer(message("a notice", notice=True))
            engine.offer(message("private", room=None))
            engine.offer(ChatMessage("alex", "addr", "sam", "to sam", 1.0, "0000000000001001"))
            engine.offer(message("in another room", room="#other"))
            engine.offer(message("counted", account="alex"))
            (request,) = await receiver.until(1)
            await anyio.sleep(0.2)
            assert receiver.texts() == ["counted"]
            assert request.json["room"] == "#Builds" and request.json["account"] == "alex"
            tg.cancel_scope.cancel()


async def test_https_with_the_receivers_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with receiving(Receiver(tls=server_context)) as receiver:
        secure = hook(receiver.url)
        async with chat_with(secure) as server:
            alex = await member(server, "alex")
            server.deliveries.ssl_context = client_context
            await say(alex, "over tls")
            (request,) = await receiver.until(1)
            assert request.json["text"] == "over tls"
            assert signature_matches(
                secure.secret, request.body, request.headers["x-imkit-signature"]
            )
            # Without the CA, the certificate is refused, and that is a failure.
            server.deliveries.ssl_context = None
            server.deliveries.attempts = 1
            await say(alex, "untrusted")
            await until(lambda: server.deliveries.status("ci").failed == 1)
            assert len(receiver.requests) == 1
            error = server.deliveries.status("ci").last_error
            assert error is not None and "certificate" in error.lower()


async def test_the_metrics_count_each_hooks_deliveries() -> None:
    async with receiving(Receiver(answer=lambda r: (404, b""))) as receiver:
        async with chat_with(hook(receiver.url), metrics="127.0.0.1:0") as server:
            alex = await member(server, "alex")
            await say(alex, "one")
            await until(lambda: server.deliveries.status("ci").failed == 1)
            samples = await Scraper(server).metrics()
            assert value(samples, "imkit_hook_deliveries_total", hook="ci", result="failed") == 1
            assert value(samples, "imkit_hook_deliveries_total", hook="ci", result="delivered") == 0
            assert value(samples, "imkit_hook_deliveries_total", hook="ci", result="dropped") == 0
            assert value(samples, "imkit_hook_queued", hook="ci") == 0


@pytest.mark.parametrize(
    "url", ["ftp://x/", "http:///nohost", "http://u:p@host/", "http://h:99999/"]
)
async def test_a_hook_whose_url_cannot_be_posted_to_fails_at_once(url: str) -> None:
    async with chat_with(hook(url)) as server:
        alex = await member(server, "alex")
        await say(alex, "one")
        await until(lambda: server.deliveries.status("ci").failed == 1)
        assert server.deliveries.status("ci").last_error


async def test_a_bug_in_one_delivery_fails_only_that_message() -> None:
    calls = 0

    async def post(*args: Any, **kwargs: Any) -> Posted:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return await post_json(*args, **kwargs)

    async with receiving(Receiver()) as receiver:
        async with chat_with(hook(receiver.url)) as server:
            server.deliveries.post = post
            alex = await member(server, "alex")
            await say(alex, "first")
            await say(alex, "second")
            await receiver.until(1)
            await until(lambda: server.deliveries.status("ci").delivered == 1)
            status = server.deliveries.status("ci")
            assert status.failed == 1 and "a bug" in (status.last_error or "")
            assert receiver.texts() == ["second"]
            await say(alex, "third")  # the server and the hook's sender go on
            await receiver.until(2)
            assert receiver.texts() == ["second", "third"]
