"""``imkit serve --web`` in-process, and WebSocket users of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from imkit.server import Server, ServerConfig
from tests.support import TIMEOUT, run_server

WEB = "127.0.0.1:0"


def web_config(**changes: Any) -> ServerConfig:
    settings: dict[str, Any] = {"port": 0, "idle_timeout": 0, "db": "none", "web": WEB}
    return ServerConfig(**(settings | changes))


@asynccontextmanager
async def web_server(**changes: Any) -> AsyncIterator[Server]:
    async with run_server(web_config(**changes)) as server:
        yield server


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
