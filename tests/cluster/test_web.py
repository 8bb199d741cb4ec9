"""``imkit serve --web``: the page's files over HTTP, and the chat over a WebSocket.

The WebSocket is driven with a real client library (websockets' asyncio client); raw
sockets only where a client library would refuse to misbehave (bad paths, bad frames).
"""

from __future__ import annotations

import re

import anyio

from tests.support import TIMEOUT, joined, split_addr
from tests.support.cluster import Cluster
from tests.support.web import WEB, hello, web_user


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
