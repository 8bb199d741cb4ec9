"""``imkit serve --web``: the page's files over HTTP, and the chat over a WebSocket.

The WebSocket is driven with a real client library (websockets' asyncio client); raw
sockets only where a client library would refuse to misbehave (bad paths, bad frames).

Here the tests that need a real redis-server; the others are in process/test_web.py,
server/test_web.py."""

from __future__ import annotations

import re

from tests.support import joined
from tests.support.cluster import Cluster
from tests.support.web import WEB, hello, web_user

# ------------------------------------------------------------ idle and bad HTTP (review)


async def test_a_web_user_and_a_tcp_user_on_two_nodes(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--web", WEB)
    found = re.search(r"web on http://(\S+)/", one.wait_log("web on http://"))
    assert found is not None
    text = await joined(two.address, "tee")
    async with web_user(found.group(1)) as user:
        welcome = await hello(user, "wes")
        assert welcome["features"] == ["history", "accounts", "rooms", "search", "edit", "cluster"]
        await text.line_matching("user is online")
        await user.send(type="message", text="hello from the web", id=2)
        assert await text.line() == f"[{user.addr}]wes:hello from the web\n"
        await text.send("to|wes|hello from tcp\n")
        private = await user.until("message")
        if private["text"] == "hello from the web":  # its own copy came first
            private = await user.until("message")
        assert private["from"] == "tee" and private["to"] == "wes"
        assert private["text"] == "hello from tcp"
