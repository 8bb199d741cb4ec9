"""The HTTP of incoming webhooks on one server (docs/integrations.md): a ``--hooks`` port
serves only ``/hooks/KEY`` (no page, no WebSocket), the web port serves both; curl's
``Expect: 100-continue`` for a larger body; two POSTs on one kept-alive connection; a
declared body over the limit refused before it is read; and no log line carries a key.
One server only: what is HTTP here is the same on a cluster node (tests/cluster)."""

from __future__ import annotations

import json
import logging
import socket

import anyio
import pytest

from imkit.server import Server, ServerConfig
from tests.support import ask, json_client, run_server
from tests.support.hooks import curl, post_json


async def _hook(server: Server, **fields: object) -> str:
    assert (await ask(server, type="room_add", room="#ops"))["type"] == "ok"
    made = await ask(server, type="hook_add", room="#ops", **fields)
    assert made["type"] == "ok", made
    return str(made["urls"][0])


def _raw_exchange(address: str, data: bytes) -> bytes:
    """Send ``data`` on one connection and read until the server closes it."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_a_hooks_port_serves_hooks_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = ServerConfig(port=0, idle_timeout=0, hooks=("127.0.0.1:0",))
    async with run_server(config) as server:
        assert server.web is not None and server.web.addresses == []
        address = server.web.hook_addresses[0]
        url = await _hook(server, name="ci")
        assert url.startswith(f"http://{address}/hooks/")
        key = url.rsplit("/", 1)[1]
        member = await json_client(server.addresses[0], "jo")
        await member.request(type="join", room="#ops")

        page = await curl(f"http://{address}/", "", None, method="GET")
        assert (page.status, page.body) == (404, "this port serves only /hooks/KEY\n")
        ws = await curl(f"http://{address}/ws", "", None, method="GET")
        assert ws.status == 404
        big = "x" * 3000  # curl asks Expect: 100-continue past 1 KiB
        assert (await post_json(url, {"text": big})).status == 200
        assert (await member.json_of_type("message"))["text"] == big
        assert (await post_json(url, {"text": "y" * 5000})).status == 200
        clipped = (await member.json_of_type("message"))["text"]
        assert clipped == "y" * 4093 + "\u2026"  # cut to --max-line: 4096 bytes, "…" is 3
        # Two POSTs on one kept-alive connection, the second answered too.
        body = json.dumps({"text": "one"}).encode()
        request = (
            f"POST /hooks/{key} HTTP/1.1\r\nHost: {address}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        last = request.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1)
        answers = await anyio.to_thread.run_sync(_raw_exchange, address, request + last)
        assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2
        assert [(await member.json_of_type("message"))["text"] for _ in range(2)] == ["one"] * 2
        # A declared body over the limit is refused before it is sent, and the end.
        huge = (
            f"POST /hooks/{key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000\r\n\r\n"
        ).encode()
        refused = await anyio.to_thread.run_sync(_raw_exchange, address, huge)
        assert refused.startswith(b"HTTP/1.1 413 ")
        assert b"connection: close" in refused.lower()
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert "hook ci posted to #ops" in logged
    assert key not in logged


async def test_the_web_port_serves_the_page_and_hooks() -> None:
    config = ServerConfig(port=0, idle_timeout=0, web="127.0.0.1:0")
    async with run_server(config) as server:
        url = await _hook(server)
        address = server.web_addresses[0]
        page = await curl(f"http://{address}/", "", None, method="GET")
        assert page.status == 200 and "<html" in page.body.lower()
        assert (await post_json(url, {"text": "hello"})).status == 200
        bad = await curl(f"http://{address}/hooks/not%20a%20key", "{}")
        assert (bad.status, bad.body) == (404, "no such hook\n")
