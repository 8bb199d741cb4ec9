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


















# ------------------------------------------------------------------------ the files










# ----------------------------------------------------------------- the chat over it
















# ------------------------------------------------------------- limits and leaving














# ---------------------------------------------------------------------- a cluster




# ------------------------------------------------------------ idle and bad HTTP (review)


async def test_an_unknown_web_origin_is_a_usage_error() -> None:
    result = run_imkit("serve", "--port", "0", "--web", WEB, "--web-origin", "ftp://x")
    assert result.returncode == 2 and "--web-origin" in result.stderr
