"""The client library against a real server: each call and each error code.

Here the tests that need an in-process server on loopback; the others are in
behaviour/test_client.py."""

from __future__ import annotations

import socket

import pytest

from imkit.client.library import NameChange, Presence, connect
from imkit.errors import (
    Disconnected,
    InvalidMessage,
    InvalidName,
    NameTaken,
    NoSuchUser,
    ServerError,
    TimedOut,
    Unreachable,
)
from imkit.server import Server, ServerConfig
from tests.support import hostport, run_server


async def test_connect_with_a_name_and_the_welcome(server: Server) -> None:
    async with connect(*hostport(server), name="alex") as client:
        assert client.name == "alex"
        assert client.server.startswith("imkit/")
        host, port = client.addr.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (lambda c: c.send("x", to="nobody"), NoSuchUser, "no_such_user"),
        (lambda c: c.send(""), InvalidMessage, "invalid_message"),
        (lambda c: c.send("two\nlines"), InvalidMessage, "invalid_message"),
        (lambda c: c.rename("taken"), NameTaken, "name_taken"),
        (lambda c: c.rename("TAKEN"), NameTaken, "name_taken"),
        (lambda c: c.rename("no spaces"), InvalidName, "invalid_name"),
        (lambda c: c.send("x" * 5000), ServerError, "line_too_long"),
    ],
)
async def test_errors_carry_the_servers_code(server: Server, call, error, code) -> None:  # type: ignore[no-untyped-def]
    async with connect(*hostport(server), name="taken"), connect(*hostport(server)) as client:
        with pytest.raises(error) as raised:
            await call(client)
        assert raised.value.code == code
        assert str(raised.value)
        await client.send("still connected")


async def test_unreachable_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(Unreachable, match=f"cannot connect to 127.0.0.1:{port}"):
            async with connect("127.0.0.1", port):
                pass


async def test_silent_server_times_out() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()  # accepts (in the kernel) but never answers
        with pytest.raises(TimedOut):
            async with connect("127.0.0.1", mute.getsockname()[1], timeout=0.5):
                pass


async def test_kick_by_idle_raises_disconnected_with_reason() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0.5)) as server:
        async with connect(*hostport(server)) as client:
            with pytest.raises(Disconnected) as raised:
                async for _ in client.events():
                    pass
            assert raised.value.reason == "idle"
            assert str(raised.value) == "you are forced offline"
            with pytest.raises(Disconnected):
                await client.send("too late")


async def test_server_shutdown_raises_disconnected() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0)) as server:
        async with connect(*hostport(server)) as client:
            server.stop()
            with pytest.raises(Disconnected) as raised:
                async for _ in client.events():
                    pass
            assert raised.value.reason == "shutdown"


# One node only: on a cluster node a user's own online line comes back from Redis
# after the welcome (docs/cluster.md, One order), so there the library's first event
# is its own Presence rather than the hello's rename.
async def test_presence_and_rename_events(server: Server) -> None:
    async with connect(*hostport(server), name="watcher") as watcher:
        events = watcher.events()
        # its own rename from the hello comes first, like any rename
        assert await anext(events) == NameChange(watcher.addr, "watcher", watcher.addr)
        async with connect(*hostport(server)) as other:
            joined_event = await anext(events)
            assert joined_event == Presence(other.addr, other.addr, online=True)
            assert await other.rename("carol") == "carol"
            assert other.name == "carol"
            assert await anext(events) == NameChange(other.addr, "carol", other.addr)
        assert await anext(events) == Presence("carol", other.addr, online=False)
