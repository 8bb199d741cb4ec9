"""``imkit serve --web``: the page's files over HTTP, and the chat over a WebSocket.

The WebSocket is driven with a real client library (websockets' asyncio client); raw
sockets only where a client library would refuse to misbehave (bad paths, bad frames).

Here the tests that run imkit subprocesses; the others are in cluster/test_web.py,
server/test_web.py."""

from __future__ import annotations

from tests.support import run_imkit
from tests.support.web import WEB

# ------------------------------------------------------------ idle and bad HTTP (review)


async def test_an_unknown_web_origin_is_a_usage_error() -> None:
    result = run_imkit("serve", "--port", "0", "--web", WEB, "--web-origin", "ftp://x")
    assert result.returncode == 2 and "--web-origin" in result.stderr
