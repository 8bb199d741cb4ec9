"""Bans and mutes (issue 14, points 1, 2 and 7) over real TCP: clients come from their
own loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a ban can hit one and not
another. A ban removes the matching users at once and refuses them at connect, lasts
across a restart, ends by itself (an injected clock), and is lifted by unban; a guest's
name bans its address. A mute refuses messages and renames in both modes. In a cluster
a ban made on one node removes a user of the other, and a mute reaches any node.

Here the tests that need an in-process server on loopback; the others are in
cluster/test_moderation.py, process/test_moderation.py, unit/test_moderation.py."""

from __future__ import annotations

import anyio
import pytest

from imkit.server import Server
from tests.support import (
    Clock,
    LineClient,
    ask,
    client_from,
    split_addr,
)


@pytest.fixture
def server(moderation_server: Server) -> Server:
    """This file's server: tests/conftest.py's moderation_server."""
    return moderation_server


# ---------------------------------------------------------------------- a cluster


async def test_a_ban_removes_the_user_and_refuses_it_at_connect(server: Server) -> None:
    address = server.addresses[0]
    watcher = await client_from(address, "127.0.0.3")
    target = await client_from(address, "127.0.0.2")
    await watcher.line()  # target's online line
    reply = await ask(server, type="ban", target="127.0.0.2", reason="flooding")
    assert reply == {"type": "ok", "target": "127.0.0.2", "until": None, "removed": 1}
    assert await target.line() == "you are banned: flooding\n"
    assert await target.eof()
    assert (await watcher.line()).endswith(":user offline\n")
    # A new connection from that address: the bye before anything else, then closed.
    host, port = split_addr(address)
    again = LineClient(await anyio.connect_tcp(host, port, local_host="127.0.0.2"))
    assert await again.line() == "you are banned: flooding\n"
    assert await again.eof()
    other = await client_from(address, "127.0.0.4")  # another address is welcome
    await other.aclose()
    assert server.hub.stats.refused_banned == 1
    assert server.hub.stats.banned == 1
    listed = await ask(server, type="bans")
    assert [(b["target"], b["kind"], b["by"]) for b in listed["bans"]] == [
        ("127.0.0.2", "address", "uid 1000")
    ]
    assert (await ask(server, type="unban", target="127.0.0.2"))["type"] == "ok"
    back = await client_from(address, "127.0.0.2")
    await back.aclose()
    missing = await ask(server, type="unban", target="127.0.0.2")
    assert missing["code"] == "no_such_ban"


async def test_a_network_ban_with_an_end_and_a_guest_name(server: Server, clock: Clock) -> None:
    address = server.addresses[0]
    five = await client_from(address, "127.0.0.5")
    six = await client_from(address, "127.0.0.6")
    nine = await client_from(address, "127.0.0.9")
    reply = await ask(server, type="ban", target="127.0.0.4/30", **{"for": 600.0})
    assert reply["removed"] == 2 and reply["until"] == "2027-01-15T08:10:00Z"
    for client in (five, six):  # after the online lines of those who came later
        line = await client.line_matching("^you are banned")
        assert line == "you are banned (until 2027-01-15T08:10:00Z)\n"
    host, port = split_addr(address)
    refused = LineClient(await anyio.connect_tcp(host, port, local_host="127.0.0.7"))
    assert (await refused.line()).startswith("you are banned")
    clock.now += 601  # the ban has ended: the address is welcome again
    welcome = await client_from(address, "127.0.0.7")
    assert await ask(server, type="bans") == {"type": "bans", "bans": []}
    # A guest's name bans its address (the IP, whatever the port).
    await nine.send("rename|nina\n")
    assert await nine.line_matching("^you have") == "you have updated user name: nina\n"
    reply = await ask(server, type="ban", target="NINA")
    assert reply["target"] == "127.0.0.9" and reply["removed"] == 1
    unknown = await ask(server, type="ban", target="nobody")
    assert unknown["code"] == "no_such_user"
    bad = await ask(server, type="ban", target="127.0.0.8", **{"for": -1})
    assert bad["code"] == "bad_request"
    await welcome.aclose()


async def test_a_mute_refuses_messages_and_renames_in_both_modes(
    server: Server, clock: Clock
) -> None:
    address = server.addresses[0]
    text = await client_from(address, "127.0.0.2")
    await text.send("rename|sam\n")
    assert await text.line() == "you have updated user name: sam\n"
    json_client = await client_from(address, "127.0.0.3")
    assert (await text.line()).endswith(":user is online\n")
    await json_client.request(type="hello", name="jo")
    reply = await ask(server, type="mute", name="SAM", reason="calm down", **{"for": 60.0})
    assert reply == {"type": "ok", "name": "sam", "until": "2027-01-15T08:01:00Z", "account": False}
    await text.send("hello\nrename|other\nwho\n")
    line = "error: you are muted: calm down (until 2027-01-15T08:01:00Z)\n"
    assert await text.line() == line
    assert await text.line() == line
    assert (await text.line()).endswith("sam:online...\n")  # who still works: it reads
    assert (await text.line()).endswith("jo:online...\n")
    assert (await ask(server, type="mute", name="jo"))["until"] is None  # while connected
    refused = await json_client.request(type="message", text="hi")
    assert refused["code"] == "muted" and refused["message"] == "you are muted"
    private = await json_client.request(type="message", to="sam", text="hi")
    assert private["code"] == "muted"
    clock.now += 61  # sam's mute has ended by itself
    await text.send("hello again\n")
    assert (await text.line()).endswith("sam:hello again\n")
    assert (await ask(server, type="unmute", name="jo"))["type"] == "ok"
    ok = await json_client.request(type="message", text="free")
    assert ok["type"] == "ok"
    assert server.hub.stats.refused_muted == 4
    assert (await ask(server, type="mute", name="ghost"))["code"] == "no_such_user"
