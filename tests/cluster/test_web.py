"""``imkit serve --web``: the page's files over HTTP, and the chat over a WebSocket.

The WebSocket is driven with a real client library (websockets' asyncio client); raw
sockets only where a client library would refuse to misbehave (bad paths, bad frames).
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from imkit.operator import answers
from imkit.server import Server, ServerConfig
from tests.conftest import run_server
from tests.redis_support import Cluster
from tests.support import TIMEOUT, LineClient, joined, run_imkit, split_addr

pytestmark = pytest.mark.anyio

WEB = "127.0.0.1:0"






class WebUser:
    """A WebSocket client of the chat: one JSON object a message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        host, port = ws.local_address[:2]
        self.addr = f"{host}:{port}"

    async def send(self, **request: Any) -> None:
        await self.ws.send(json.dumps(request))

    async def json(self) -> dict[str, Any]:
        with anyio.fail_after(TIMEOUT):
            message = await self.ws.recv()
        assert isinstance(message, str), message
        obj = json.loads(message)
        assert isinstance(obj, dict)
        return obj

    async def request(self, **request: Any) -> dict[str, Any]:
        await self.send(**request)
        return await self.json()

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            obj = await self.json()
            if obj["type"] == kind:
                return obj

    async def closed(self) -> int | None:
        """Wait for the server to close; the close code it sent."""
        with anyio.fail_after(TIMEOUT):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd is not None else None


@asynccontextmanager
async def web_user(
    address: str, *, origin: str | None = None, source: str | None = None, **kwargs: Any
) -> AsyncIterator[WebUser]:
    scheme = "wss" if "ssl" in kwargs else "ws"
    extra: dict[str, Any] = dict(kwargs)
    if origin is not None:
        extra["origin"] = origin
    if source is not None:
        extra["local_addr"] = (source, 0)
    async with connect(f"{scheme}://{address}/ws", open_timeout=TIMEOUT, **extra) as ws:
        yield WebUser(ws)


async def hello(user: WebUser, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """Send a hello; its welcome (after the user's own presence and rename)."""
    request: dict[str, Any] = {"type": "hello", "v": 1, "id": "h", **fields}
    if name is not None:
        request["name"] = name
    await user.send(**request)
    return await user.until("welcome")


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




# ------------------------------------------------------------------------ the files










# ----------------------------------------------------------------- the chat over it
















# ------------------------------------------------------------- limits and leaving














# ---------------------------------------------------------------------- a cluster




# ------------------------------------------------------------ idle and bad HTTP (review)


async def test_a_web_user_and_a_tcp_user_on_two_nodes(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--web", WEB)
    found = re.search(r"web on http://(\S+)/", one.wait_log("web on http://"))
    assert found is not None
    text = await joined(two.address, "tee")
    async with web_user(found.group(1)) as user:
        welcome = await hello(user, "wes")
        assert welcome["features"] == ["history", "accounts", "cluster"]
        await text.line_matching("user is online")
        await user.send(type="message", text="hello from the web", id=2)
        assert await text.line() == f"[{user.addr}]wes:hello from the web\n"
        await text.send("to|wes|hello from tcp\n")
        private = await user.until("message")
        if private["text"] == "hello from the web":  # its own copy came first
            private = await user.until("message")
        assert private["from"] == "tee" and private["to"] == "wes"
        assert private["text"] == "hello from tcp"
