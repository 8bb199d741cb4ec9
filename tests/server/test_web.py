"""``imkit serve --web``: the page's files over HTTP, and the chat over a WebSocket.

The WebSocket is driven with a real client library (websockets' asyncio client); raw
sockets only where a client library would refuse to misbehave (bad paths, bad frames).

Here the tests that need an in-process server on loopback; the others are in
cluster/test_web.py, process/test_web.py."""

from __future__ import annotations

import json
import ssl
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from imkit.operator import answers
from tests.support import TIMEOUT, LineClient, joined, split_addr
from tests.support.web import hello, web_server, web_user


async def read_to_end(stream: anyio.abc.ByteReceiveStream) -> bytes:
    """Everything ``stream`` gives until the server closes it."""
    data = b""
    with anyio.fail_after(TIMEOUT):
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    return data


async def http(address: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange (the server is asked to close): status, headers, body."""
    host, port = split_addr(address)
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(request)
        data = await read_to_end(stream)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def get(
    path: str, host: str = "x", method: str = "GET", extra: str = "", close: bool = True
) -> bytes:
    if close:
        extra += "Connection: close\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


# ------------------------------------------------------------------------ the files


async def test_the_page_and_its_files_and_nothing_else() -> None:
    async with web_server() as server:
        web = server.web_addresses[0]
        status, headers, body = await http(web, get("/"))
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert body.startswith(b"<!doctype html>")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in headers["content-security-policy"]
        for path, kind in [("/style.css", "text/css"), ("/app.js", "text/javascript")]:
            status, headers, body = await http(web, get(path + "?v=1"))
            assert status == 200 and headers["content-type"].startswith(kind), path
            assert int(headers["content-length"]) == len(body)
            etag = headers["etag"]
            status, headers, body = await http(web, get(path, extra=f"If-None-Match: {etag}\r\n"))
            assert status == 304 and body == b""
        status, headers, body = await http(web, get("/index.html", method="HEAD"))
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
        for path in ["/nope.js", "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/static/app.js"]:
            status, _, _ = await http(web, get(path))
            assert status == 404, path
        status, headers, _ = await http(web, get("/", method="POST", extra="Content-Length: 0\r\n"))
        assert status == 405 and headers["allow"] == "GET, HEAD"
        status, _, _ = await http(web, b"NOT HTTP AT ALL\r\n\r\n")
        assert status == 400
        # A WebSocket path without an upgrade is no WebSocket.
        status, _, _ = await http(web, get("/ws"))
        assert status == 426
        # Keep-alive: two requests on one connection.
        host, port = split_addr(web)
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(get("/app.js", close=False) + get("/style.css"))
            data = await read_to_end(stream)
            assert data.count(b"HTTP/1.1 200 OK") == 2


async def test_the_origin_must_be_the_pages_own_or_allowed() -> None:
    async with web_server(web_origins=("https://chat.example.org",)) as server:
        web = server.web_addresses[0]
        async with web_user(web, origin=f"http://{web}") as user:  # the page's own
            assert (await hello(user, "own"))["name"] == "own"
        async with web_user(web, origin="https://chat.example.org") as user:
            assert (await hello(user, "allowed"))["name"] == "allowed"
        async with web_user(web) as user:  # no Origin: not a browser
            assert (await hello(user))["type"] == "welcome"
        host, port = split_addr(web)
        other_port = f"http://{host}:{port + 1}"  # the same host, another port: another site
        for origin in ["https://evil.example", other_port, "null"]:
            with pytest.raises(InvalidStatus) as refused:
                async with web_user(web, origin=origin):
                    pass
            assert refused.value.response.status_code == 403, origin


async def test_a_handshake_with_two_origins_is_refused() -> None:
    """Issue 25, item 8: the second Origin was ignored, so an allowed one first let any
    other through (and a proxy that checks the last one disagrees with imkit)."""
    async with web_server() as server:
        web = server.web_addresses[0]
        upgrade = (
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        )
        own = f"Origin: http://{web}\r\n"
        host, port = split_addr(web)
        async with await anyio.connect_tcp(host, port) as stream:  # the control: one Origin
            await stream.send(get("/ws", host=web, extra=upgrade + own, close=False))
            with anyio.fail_after(TIMEOUT):
                assert (await stream.receive()).startswith(b"HTTP/1.1 101 ")
        for second in ["Origin: https://evil.example\r\n", own]:
            extra = upgrade + own + second
            status, _, body = await http(web, get("/ws", host=web, extra=extra))
            assert (status, body) == (
                400,
                b"two Origin headers: a WebSocket handshake has at most one\n",
            )
        extra = upgrade + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        status, _, body = await http(web, get("/ws", host=web, extra=extra))
        assert status == 400 and body.startswith(b"two Sec-WebSocket-Key headers")


# ----------------------------------------------------------------- the chat over it


async def test_every_request_and_a_tcp_user_in_one_order() -> None:
    async with web_server(password_hash_cost=4) as server:
        web, chat = server.web_addresses[0], server.addresses[0]
        text = await joined(chat, "tee")
        async with web_user(web) as user:
            # Nothing before the hello.
            assert await user.request(type="ping", id=0) == {
                "type": "error",
                "id": 0,
                "code": "bad_request",
                "message": "send a hello first",
            }
            assert len(server.hub) == 1
            await user.send(type="hello", v=1, name="wes", id=1)
            assert await user.json() == {
                "type": "presence",
                "name": user.addr,
                "addr": user.addr,
                "status": "online",
            }
            assert (await user.json())["type"] == "rename"
            welcome = await user.json()
            assert welcome == {
                "type": "welcome",
                "id": 1,
                "name": "wes",
                "addr": user.addr,
                "server": welcome["server"],
                "account": None,
                "features": ["history", "accounts", "rooms", "search", "edit"],
                "v": 1,
            }
            assert await text.line() == f"[{user.addr}]{user.addr}:user is online\n"
            # Both ways, public and private, in one order.
            await user.send(type="message", text="hello tee", id=2)
            public = await user.json()
            assert public["type"] == "message" and public["text"] == "hello tee"
            assert await user.json() == {"type": "ok", "id": 2, "msgid": public["msgid"]}
            assert await text.line() == f"[{user.addr}]wes:hello tee\n"
            await text.send("to|wes|psst\n")
            private = await user.json()
            assert private["from"] == "tee" and private["to"] == "wes" and private["text"] == "psst"
            await text.send("hi all\n")
            assert (await user.json())["text"] == "hi all"
            assert await text.line() == f"[{text.addr}]tee:hi all\n"
            await user.send(type="message", text="back", to="tee", id=3)
            assert (await user.json())["type"] == "ok"
            assert await text.line() == "wes say: back\n"
            who = await user.request(type="who", id=4)
            assert [u["name"] for u in who["users"]] == ["tee", "wes"]
            assert await user.request(type="ping", id=5) == {"type": "pong", "id": 5}
            history = await user.request(type="history", limit=10, id=6)
            assert [m["text"] for m in history["messages"]] == ["hello tee", "hi all"]
            await user.send(type="rename", name="west", id=7)
            assert (await user.until("ok"))["name"] == "west"
            # A message is one request, whatever line breaks it holds.
            await user.ws.send('{"type": "ping",\n "id": 8}')
            assert await user.json() == {"type": "pong", "id": 8}
            await user.ws.send('{"type": "message", "text": "a\nb", "id": 9}')
            assert (await user.json())["code"] == "bad_request"
            assert (await user.request(type="ping", id=10))["type"] == "pong"
            # imkit who: an ordinary JSON user.
            users = (await answers.answer(server, b'{"type":"who"}', by="uid 1000"))["users"]
            assert [u["mode"] for u in users] == ["text", "json"]
        await text.line_matching(r"\]west:user offline")

        # Log in with a hello (an account made through the admin socket).
        request = {"type": "account_add", "name": "alex", "password": "pw"}
        reply = await answers.answer(server, json.dumps(request).encode(), by="uid 1000")
        assert reply["type"] == "ok"
        async with web_user(web) as user:
            wrong = await user.request(type="hello", id=1, login={"name": "alex", "password": "x"})
            assert wrong["code"] == "login_failed"
            welcome = await hello(user, login={"name": "alex", "password": "pw"})
            assert welcome["name"] == "alex" and welcome["account"] == "alex"
            await user.send(type="login", name="alex", password="pw", id=2)
            assert (await user.until("ok"))["name"] == "alex"


async def test_bad_frames_and_long_messages() -> None:
    async with web_server(max_line=100) as server:
        web = server.web_addresses[0]
        limit = 3 * 100 + 1024  # the JSON line limit for --max-line 100
        async with web_user(web) as user:
            await hello(user, "wes")
            await user.ws.send(b'{"type":"ping","id":1}')
            binary = await user.json()
            assert binary["code"] == "bad_request" and "binary" in binary["message"]
            assert await user.request(type="ping", id=2) == {"type": "pong", "id": 2}
            assert (await user.request(type="nope", id=3))["code"] == "bad_request"
            await user.ws.send("{not json")
            assert (await user.json())["code"] == "bad_request"
            text = "x" * 101  # longer than --max-line: its text, in a short enough message
            assert (await user.request(type="message", text=text, id=4))["code"] == "line_too_long"
            await user.ws.send("x" * (limit + 1))
            too_long = await user.json()
            assert too_long == {
                "type": "error",
                "code": "line_too_long",
                "message": f"message too long (the limit is {limit} bytes); discarded",
            }
            assert await user.request(type="ping", id=5) == {"type": "pong", "id": 5}
            await user.ws.send("x" * (4 * limit + 1))  # past the hard cap
            assert await user.closed() == 1009
        await _wait_for(lambda: len(server.hub) == 0)


async def _wait_for(condition: Any) -> None:
    with anyio.fail_after(TIMEOUT):
        while not condition():
            await anyio.sleep(0.02)


async def _raw_websocket(address: str) -> anyio.abc.SocketStream:
    host, port = split_addr(address)
    stream = await anyio.connect_tcp(host, port)
    await stream.send(
        get(
            "/ws",
            host=address,
            close=False,
            extra="Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        )
    )
    data = b""
    with anyio.fail_after(TIMEOUT):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
    assert data.startswith(b"HTTP/1.1 101"), data
    return stream


def _masked_text_frame(payload: bytes) -> bytes:
    """A client's text frame, built by hand: a library would not send invalid UTF-8."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def test_invalid_utf8_closes_with_1007() -> None:
    async with web_server() as server:
        stream = await _raw_websocket(server.web_addresses[0])
        async with stream:
            await stream.send(_masked_text_frame(b'{"type":"hello","v":1,"id":1}'))
            await stream.send(_masked_text_frame(b"\xff\xfe"))
            data = await read_to_end(stream)
            close = data.rfind(b"\x88")
            assert close >= 0, data
            assert int.from_bytes(data[close + 2 : close + 4], "big") == 1007


async def test_a_handshake_that_is_not_a_websocket_one() -> None:
    async with web_server() as server:
        status, _, _ = await http(
            server.web_addresses[0],
            get("/ws", extra="Upgrade: websocket\r\nConnection: Upgrade\r\n", close=False),
        )
        assert status == 426


# ------------------------------------------------------------- limits and leaving


async def test_no_hello_in_time_then_idle() -> None:
    async with web_server(auth_timeout=0.3, idle_timeout=0.6) as server:
        web = server.web_addresses[0]
        async with web_user(web) as user:
            bye = await user.json()
            assert bye == {
                "type": "bye",
                "reason": "idle",
                "message": "no hello within 0.3 seconds",
            }
            assert await user.closed() == 1000
        async with web_user(web) as user:
            await hello(user, "wes")
            assert await user.until("bye") == {
                "type": "bye",
                "reason": "idle",
                "message": "you are forced offline",
            }
            assert await user.closed() == 1000


async def test_password() -> None:
    async with web_server(password="s3cret") as server:
        web = server.web_addresses[0]
        async with web_user(web) as user:
            refused = await user.request(type="hello", v=1, id=1)
            assert refused["code"] == "unauthorized"
            assert (await user.json())["reason"] == "unauthorized"
            assert await user.closed() == 1008
        async with web_user(web) as user:
            assert (await hello(user, "wes", password="s3cret"))["name"] == "wes"


async def test_bans_and_max_clients_hold_for_web_clients() -> None:
    async with web_server(max_clients=2) as server:
        web = server.web_addresses[0]
        async with web_user(web, source="127.0.0.2") as user:
            await hello(user, "wes")
            request = {"type": "ban", "target": "127.0.0.2", "reason": "spam"}
            reply = await answers.answer(server, json.dumps(request).encode(), by="uid 1000")
            assert reply["type"] == "ok"
            bye = await user.until("bye")
            assert bye["reason"] == "banned"
            assert await user.closed() == 1008
        with pytest.raises((InvalidHandshake, OSError, EOFError)):
            async with web_user(web, source="127.0.0.2"):
                pass
        assert server.hub.stats.refused_banned >= 1
        # --max-clients counts chat connections of both ports.
        first = await LineClient.connect(server.addresses[0])
        await first.line()
        async with web_user(web) as user:
            await hello(user)
            async with web_user(web) as refused:
                assert (await refused.json())["reason"] == "server_full"
                assert await refused.closed() == 1013
            third = await LineClient.connect(server.addresses[0])
            assert "server is full" in await third.line()
            assert await third.eof()
        assert server.hub.stats.refused_full == 2


async def test_a_full_server_serves_the_page_and_says_why_over_the_websocket() -> None:
    """The page's files are no chat client: a full server still serves them, and a
    WebSocket opened on it gets the JSON bye server_full, then the close code 1013."""
    async with web_server(max_clients=1) as server:
        web = server.web_addresses[0]
        nc = await LineClient.connect(server.addresses[0])  # a netcat user fills it
        assert "online" in await nc.line()
        for path in ("/", "/app.js", "/style.css"):
            status, _, body = await http(web, get(path))
            assert status == 200 and body, path
        assert server.hub.stats.refused_full == 0
        async with web_user(web) as user:
            assert await user.json() == {
                "type": "bye",
                "reason": "server_full",
                "message": "the server is full (1 clients)",
            }
            assert await user.closed() == 1013
        assert server.hub.stats.refused_full == 1
        assert len(server.connections) == 1  # the refused WebSocket never joined
        # Room again: the next WebSocket joins.
        await nc.stream.aclose()
        with anyio.fail_after(TIMEOUT):
            while server.connections:
                await anyio.sleep(0.01)
        async with web_user(web) as user:
            assert (await hello(user, "wes"))["name"] == "wes"


async def test_shutdown_says_bye_then_closes() -> None:
    async with web_server() as server:
        async with web_user(server.web_addresses[0]) as user:
            await hello(user, "wes")
            server.stop()
            assert await user.until("bye") == {
                "type": "bye",
                "reason": "shutdown",
                "message": "the server is shutting down",
            }
            assert await user.closed() == 1000


async def test_https_and_wss(tls_files: dict[str, str]) -> None:
    async with web_server(tls_cert=tls_files["cert"], tls_key=tls_files["key"]) as server:
        web = server.web_addresses[0]
        context = ssl.create_default_context(cafile=tls_files["ca"])
        host, port = split_addr(web)
        stream = await anyio.connect_tcp(host, port, ssl_context=context)
        await stream.send(get("/", host=web))
        data = await read_to_end(stream)
        await anyio.aclose_forcefully(stream)
        assert data.startswith(b"HTTP/1.1 200 OK") and b"<!doctype html>" in data
        async with web_user(web, origin=f"https://{web}", ssl=context) as user:
            assert (await hello(user, "secure"))["name"] == "secure"
            assert (await user.request(type="ping", id=1))["type"] == "pong"
        with pytest.raises(InvalidStatus):  # another site's page
            async with web_user(web, origin="https://evil.example", ssl=context):
                pass


# ------------------------------------------------------------ idle and bad HTTP (review)


async def test_idle_and_unread_http_connections_are_closed_and_harm_nobody() -> None:
    """A connection that sends nothing, or asks and never reads, is closed after the
    request timeout; the server goes on (an idle one used to end it with a traceback)."""
    async with web_server(http_timeout=0.5) as server:
        web = server.web_addresses[0]
        host, port = split_addr(web)
        silent = await anyio.connect_tcp(host, port)
        greedy = await anyio.connect_tcp(host, port)
        await greedy.send(get("/app.js", close=False) * 50)  # and never reads
        await anyio.sleep(1.5)
        assert await read_to_end(silent) == b""  # closed without a word
        await silent.aclose()
        await greedy.aclose()
        status, _, _ = await http(web, get("/"))
        assert status == 200
        chat = await joined(server.addresses[0])
        await chat.send("who\n")
        assert (await chat.line()).endswith(":online...\n")


async def test_a_malformed_websocket_handshake_is_refused() -> None:
    async with web_server() as server:
        web = server.web_addresses[0]
        upgrade = (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
        )
        bad_key = upgrade + b"Sec-WebSocket-Key: !!!\r\n\r\n"
        assert (await http(web, bad_key))[0] == 400
        key = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        with_body = upgrade + key + b"Content-Length: 5\r\n\r\nhello"
        assert (await http(web, with_body))[0] == 400
        old = upgrade.replace(b"Version: 13", b"Version: 8") + key + b"\r\n"
        status, headers, _ = await http(web, old)
        assert status == 426 and headers.get("sec-websocket-version") == "13"


async def test_the_page_s_own_host_by_https_too_when_tls_ends_at_a_proxy() -> None:
    async with web_server() as server:
        web = server.web_addresses[0]
        async with connect(
            f"ws://{web}/ws",
            origin=f"https://{web}",  # type: ignore[arg-type]
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "id": 1}))
            reply = json.loads(await ws.recv())
            while reply.get("type") != "welcome":
                reply = json.loads(await ws.recv())
            assert reply["id"] == 1
