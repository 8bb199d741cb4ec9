"""Clients from chosen loopback addresses, for the per-address limits."""

from __future__ import annotations

import anyio

from tests.support import (
    LineClient,
    split_addr,
)


async def connect_from(source: str, address: str) -> LineClient:
    """A raw client whose socket is bound to ``source`` (127.0.0.2 ...)."""
    host, port = split_addr(address)
    return LineClient(await anyio.connect_tcp(host, port, local_host=source))


async def online_from(source: str, address: str) -> LineClient:
    client = await connect_from(source, address)
    assert await client.line() == f"[{client.addr}]{client.addr}:user is online\n"
    return client


async def refused(client: LineClient, line: str) -> None:
    assert await client.line() == line
    assert await client.eof()
    await client.aclose()


TOO_MANY_16 = "too many connections from your address (16 at most)\n"
