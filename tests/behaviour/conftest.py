"""The chat's behaviour on both backends: every test of this folder takes ``chat``, which
is one in-process server ("one node", marked ``server``), or two in-process servers that
are one chat through a real redis-server ("two nodes", ``--cluster``, marked
``cluster``). The k-th client connects to ``chat.address(k)``: on two nodes the clients
alternate between them, so every exchange between two neighbours crosses Redis.

On two nodes delivery is asynchronous (a Redis round trip): the tests wait for each line
with a timeout (LineClient), never sleep and then assert. A test whose behaviour
legitimately differs in a cluster stays in tests/server and says why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from imkit.server import Server, ServerConfig
from tests.support import run_server, split_addr
from tests.support.cluster import RedisServer, running_redis


class Chat:
    """A running chat of one node or two."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    @property
    def clustered(self) -> bool:
        return len(self.servers) > 1

    def address(self, k: int = 0) -> str:
        """Where the k-th client connects: the nodes in turn."""
        return self.servers[k % len(self.servers)].addresses[0]

    def hostport(self, k: int = 0) -> tuple[str, int]:
        return split_addr(self.address(k))

    @property
    def features(self) -> list[str]:
        """What a JSON welcome lists."""
        return (
            ["history", "accounts", "rooms", "search", "edit", "cluster"]
            if self.clustered
            else ["history", "accounts", "rooms", "search", "edit"]
        )


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    """One redis-server for all of this folder's two-node tests (a worker's, under
    xdist); each test is a cluster of its own name on it, so none sees another's."""
    with running_redis() as redis:
        yield redis


@pytest.fixture(params=["one node", "two nodes"])
async def chat(request: pytest.FixtureRequest) -> AsyncIterator[Chat]:
    async with _running(request) as running:
        yield running


@pytest.fixture(params=["one node", "two nodes"])
async def irc_chat(request: pytest.FixtureRequest) -> AsyncIterator[Chat]:
    """``chat`` with an IRC port on each node (``--irc``), its accounts' passwords hashed
    cheaply."""
    irc = {"irc": ("127.0.0.1:0",), "server_name": "irc.test", "password_hash_cost": 4}
    async with _running(request, **irc) as running:
        yield running


@asynccontextmanager
async def _running(request: pytest.FixtureRequest, **extra: Any) -> AsyncIterator[Chat]:
    async with AsyncExitStack() as stack:
        if request.param == "one node":
            configs = [ServerConfig(port=0, idle_timeout=0, **extra)]
        else:
            redis: RedisServer = request.getfixturevalue("shared_redis")
            name = f"b{uuid.uuid4().hex[:10]}"
            configs = [
                ServerConfig(port=0, idle_timeout=0, cluster=redis.url, cluster_name=name, **extra)
                for _ in range(2)
            ]
        servers = [await stack.enter_async_context(run_server(config)) for config in configs]
        yield Chat(servers)
