"""The PROXY protocol (``--proxy-protocol CIDR``): the parser on its own (both versions,
every malformed form, any split), then over real TCP: the carried address is the user's
in presence lines, default names and ``imkit who``; a trusted connection without a valid
header is closed; a header from an untrusted address is only chat text; and in a cluster
of two nodes, the other node's users see the carried address too.

Here the tests that need an in-process server on loopback; the others are in
cluster/test_proxy_protocol.py, unit/test_proxy_protocol.py."""

from __future__ import annotations

import socket
import struct

import anyio
import pytest

from imkit.operator import answers
from imkit.server import ServerConfig
from imkit.transport.proxy import (
    V2_SIGNATURE,
    read_header,
)
from tests.support import TIMEOUT, LineClient, run_server
from tests.support.proxy_protocol import V1, v2

# ------------------------------------------------------------------ over real TCP


def _config(*trusted: str) -> ServerConfig:
    return ServerConfig(port=0, db="none", proxy_protocol=trusted, idle_timeout=0)


async def test_the_carried_address_is_the_users_everywhere() -> None:
    async with run_server(_config("127.0.0.0/8")) as server:
        address = server.addresses[0]
        first = await LineClient.connect(address)
        await first.send(V1)
        assert await first.line() == "[203.0.113.7:51000]203.0.113.7:51000:user is online\n"
        second = await LineClient.connect(address)
        await second.send(v2("2001:db8::9", 443))
        line = "[[2001:db8::9]:443][2001:db8::9]:443:user is online\n"
        assert await second.line() == line
        assert await first.line() == line
        # What follows the header in the same packet is the client's first line.
        third = await LineClient.connect(address)
        await third.send(v2("198.51.100.9", 4000) + b"rename|carol\n")
        assert await third.line() == "[198.51.100.9:4000]198.51.100.9:4000:user is online\n"
        assert await third.line() == "you have updated user name: carol\n"
        mapped = await LineClient.connect(address)
        await mapped.send(v2("::ffff:192.0.2.1", 5000))
        line = "[192.0.2.1:5000]192.0.2.1:5000:user is online\n"
        assert await mapped.line() == line
        users = await answers.answer(server, b'{"type":"who"}')
        assert [u["addr"] for u in users["users"]] == [
            "203.0.113.7:51000",
            "[2001:db8::9]:443",
            "198.51.100.9:4000",
            "192.0.2.1:5000",
        ]


async def test_a_health_check_keeps_the_balancers_own_address() -> None:
    async with run_server(_config("127.0.0.0/8")) as server:
        client = await LineClient.connect(server.addresses[0])
        await client.send(V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0))
        assert await client.line() == f"[{client.addr}]{client.addr}:user is online\n"


@pytest.mark.parametrize("first", [b"who\n", b"PROXY TCP4 1.2.3 1.2.3.5 1 2\r\n", b""])
async def test_a_trusted_connection_without_a_valid_header_is_closed(first: bytes) -> None:
    async with run_server(_config("127.0.0.1")) as server:
        watcher = await LineClient.connect(server.addresses[0])
        await watcher.send(V1)
        await watcher.line()  # its own online line
        client = await LineClient.connect(server.addresses[0])
        if first:
            await client.send(first)
        else:
            await client.stream.send_eof()  # closed before any header
        assert await client.eof()
        assert await watcher.silent(0.5)  # nobody came online
        assert server.hub.stats.refused_proxy_header == 1
        assert len(server.hub) == 1


async def test_a_header_that_never_comes_closes_the_connection() -> None:
    async with run_server(_config("127.0.0.1")) as server:
        client = await LineClient.connect(server.addresses[0])
        await client.send(b"PROXY TCP4 ")  # and nothing more
        started = anyio.current_time()
        assert await client.eof(timeout=TIMEOUT)
        waited = anyio.current_time() - started
        assert 4.0 < waited < TIMEOUT  # the 5 s bound, measured from after the send
        assert server.hub.stats.refused_proxy_header == 1


async def test_a_header_from_an_untrusted_address_is_only_chat_text() -> None:
    async with run_server(_config("10.0.0.0/8")) as server:
        client = await LineClient.connect(server.addresses[0])
        own = f"[{client.addr}]{client.addr}:user is online\n"
        assert await client.line() == own
        await client.send(V1)
        # Not believed: a line of chat (the seed's text mode strips the CR).
        text = V1.decode().rstrip("\r\n")
        assert await client.line() == f"[{client.addr}]{client.addr}:{text}\n"
        assert server.hub.stats.refused_proxy_header == 0


# ---------------------------------------------------------------------- a cluster


async def test_the_header_is_read_off_a_real_socket_exactly() -> None:
    """read_header leaves the bytes after the header unread (checked on a socket pair)."""
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.sendall(v2() + b"who\n")
        header = await read_header(left)
        assert header.source == ("198.51.100.9", 4000)
        assert left.recv(100) == b"who\n"


async def test_the_per_address_limit_counts_the_carried_address() -> None:
    config = ServerConfig(
        port=0, db="none", idle_timeout=0, proxy_protocol=("127.0.0.0/8",), max_per_ip=1
    )
    async with run_server(config) as server:
        address = server.addresses[0]
        first = await LineClient.connect(address)
        await first.send(V1)
        assert (await first.line()).endswith(":user is online\n")
        again = await LineClient.connect(address)  # the same user's address, behind it
        await again.send(V1.replace(b"51000", b"51001"))
        assert await again.line() == "too many connections from your address (1 at most)\n"
        other = await LineClient.connect(address)  # another user through the same balancer
        await other.send(v2())
        assert (await other.line()).startswith("[198.51.100.9:4000]")


async def test_a_ban_sees_the_carried_address() -> None:
    async with run_server(_config("127.0.0.0/8")) as server:
        reply = await answers.answer(server, b'{"type":"ban","target":"203.0.113.0/24"}')
        assert reply["type"] == "ok"
        banned = await LineClient.connect(server.addresses[0])
        await banned.send(V1)  # 203.0.113.7, behind the balancer
        assert await banned.line() == "you are banned\n"
        assert await banned.eof()
        other = await LineClient.connect(server.addresses[0])
        await other.send(v2())  # 198.51.100.9
        assert (await other.line()).startswith("[198.51.100.9:4000]")
