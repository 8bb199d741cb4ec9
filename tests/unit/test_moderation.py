"""Bans and mutes (issue 14, points 1, 2 and 7) over real TCP: clients come from their
own loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a ban can hit one and not
another. A ban removes the matching users at once and refuses them at connect, lasts
across a restart, ends by itself (an injected clock), and is lifted by unban; a guest's
name bans its address. A mute refuses messages and renames in both modes. In a cluster
a ban made on one node removes a user of the other, and a mute reaches any node."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from imkit.hub.core import Hub
from imkit.operator import answers
from imkit.rules.bans import Ban, Bans, parse_duration, parse_target, shown, widened
from imkit.rules.names import name_problem
from imkit.server import Server, ServerConfig
from tests.account_support import start_accounts_server
from tests.conftest import run_server
from tests.redis_support import Cluster, needs_redis
from tests.support import (
    Clock,
    LineClient,
    close_open_clients,
    joined,
    run_imkit,
    split_addr,
    start_server_process,
)

pytestmark = pytest.mark.anyio


async def client_from(address: str, source: str) -> LineClient:
    """A text client whose connection comes from the loopback address ``source``."""
    host, port = split_addr(address)
    client = LineClient(await anyio.connect_tcp(host, port, local_host=source))
    assert (await client.line()).endswith(":user is online\n")
    return client


async def ask(server: Server, **request: object) -> dict[str, Any]:
    return await answers.answer(server, json.dumps(request).encode(), by="uid 1000")


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock, short_dir: Path) -> AsyncIterator[Server]:
    config = ServerConfig(
        port=0, db="none", idle_timeout=0, rate=0, admin_socket=str(short_dir / "a.sock")
    )
    async with run_server(config, Hub(wall_clock=clock)) as running:
        yield running


# --------------------------------------------------------------------- pure rules


def test_durations_and_targets() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    for bad in ("", "10", "m", "1x", "-5m", "0s", "10m ", "99999d"):
        with pytest.raises(ValueError):
            parse_duration(bad if bad != "10m " else "10 m")
    assert str(parse_target("203.0.113.7")) == "203.0.113.7/32"
    assert str(parse_target("198.51.100.0/24")) == "198.51.100.0/24"
    assert str(parse_target("2001:db8::/64")) == "2001:db8::/64"
    assert str(parse_target("::ffff:203.0.113.7")) == "203.0.113.7/32"
    assert parse_target("alex") is None


def test_an_ipv6_address_stands_for_its_64() -> None:
    """Issue 25, item 6: as in the per-address limits, one IPv6 host is its /64."""
    assert str(parse_target("2001:db8::1")) == "2001:db8::/64"
    assert str(parse_target(" 2001:db8:0:0:ffff::1 ")) == "2001:db8::/64"
    assert str(parse_target("2001:db8::1/128")) == "2001:db8::1/128"  # a prefix given
    assert str(parse_target("2001:db8::1/96")) == "2001:db8::/96"
    assert str(parse_target("::ffff:203.0.113.7")) == "203.0.113.7/32"  # IPv4, as limits
    for target in ("2001:db8::1", "2001:db8::1/128", "203.0.113.7", "2001:db8::/48"):
        network = parse_target(target)
        assert network is not None and parse_target(shown(network)) == network
    assert widened("2001:db8::1", parse_target("2001:db8::1")) == "2001:db8::1"  # type: ignore[arg-type]
    assert widened("2001:db8::1/128", parse_target("2001:db8::1/128")) is None  # type: ignore[arg-type]
    bans = Bans()
    bans.add(Ban("2001:db8::1", None, None, "uid 0", 0.0))  # as kept before this rule
    assert bans.match("[2001:db8::2]:1", 1.0) is not None
    assert bans.match("[2001:db8:0:1::1]:1", 1.0) is None


def test_names_that_are_ipv4_targets_are_not_names() -> None:
    assert name_problem("203.0.113.7") == "a name cannot be an IPv4 address or network"
    assert name_problem("10.0.0.0/8") == "a name cannot be an IPv4 address or network"
    assert name_problem("1.2.3") is None  # not an address
    assert name_problem("2024") is None


def test_a_ban_matches_its_network_and_ends() -> None:
    bans = Bans()
    bans.add(Ban("198.51.100.0/24", 100.0, "spam", "uid 0", 0.0))
    bans.add(Ban("2001:db8::/64", None, None, "uid 0", 1.0))
    assert bans.match("198.51.100.9:4000", 50.0) is not None
    assert bans.match("198.51.101.9:4000", 50.0) is None
    assert bans.match("198.51.100.9:4000", 100.0) is None  # ended
    assert bans.match("[2001:db8::7]:443", 1e12) is not None  # permanent
    assert bans.match("[::ffff:198.51.100.9]:1", 50.0) is not None  # IPv4-mapped
    assert [b.target for b in bans.in_force(200.0)] == ["2001:db8::/64"]


# ------------------------------------------------------------------ over real TCP


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


async def test_bans_survive_a_restart_and_the_cli_shows_them(short_dir: Path) -> None:
    db = short_dir / "m.db"
    sock = short_dir / "m.sock"
    args = ("--db", str(db), "--admin-socket", str(sock))
    first = start_server_process(*args)
    try:
        banned = run_imkit(
            "ban", "203.0.113.0/24", "--for", "2h", "--reason", "spam", "--admin-socket", str(sock)
        )
        assert banned.returncode == 0, banned.stderr
        assert banned.stdout.startswith("banned 203.0.113.0/24 until ")
        assert banned.stdout.endswith("; 0 users removed\n")
    finally:
        first.stop()
    assert "ban on 203.0.113.0/24 by uid" in first.stderr()
    second = start_server_process(*args)
    try:
        table = run_imkit("bans", "--admin-socket", str(sock))
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.split() == ["TARGET", "KIND", "UNTIL", "REASON", "BY"]
        assert row.split()[:2] == ["203.0.113.0/24", "network"] and "spam" in row
        listed = json.loads(run_imkit("bans", "--json", "--admin-socket", str(sock)).stdout)
        assert [b["target"] for b in listed] == ["203.0.113.0/24"]
        gone = run_imkit("unban", "203.0.113.9", "--admin-socket", str(sock))
        assert gone.returncode == 1 and "no ban on 203.0.113.9" in gone.stderr
        bad = run_imkit("ban", "x", "--for", "forever", "--admin-socket", str(sock))
        assert bad.returncode == 2 and "not a duration" in bad.stderr
        lifted = run_imkit("unban", "203.0.113.0/24", "--admin-socket", str(sock))
        assert lifted.returncode == 0 and lifted.stdout == "unbanned 203.0.113.0/24\n"
    finally:
        second.stop()


async def proxied(address: str, source: str, port: int = 40000) -> LineClient:
    """A client behind a balancer (--proxy-protocol) whose user is at ``source``."""
    client = await LineClient.connect(address)
    await client.send(f"PROXY TCP6 {source} 2001:db8::ffff {port} 8888\r\n".encode())
    return client


async def imkit(*args: str) -> tuple[int, str]:
    done = await anyio.to_thread.run_sync(lambda: run_imkit(*args))
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


async def test_a_ban_of_an_ipv6_address_covers_its_64(short_dir: Path) -> None:
    """Issue 25, item 6, on real connections: the users' IPv6 addresses come in PROXY
    headers (the only way to have many on a loopback), and `imkit ban` says what it
    covers."""
    sock = str(short_dir / "m.sock")
    server = start_server_process("--admin-socket", sock, "--proxy-protocol", "127.0.0.0/8")
    try:
        one = await proxied(server.address, "2001:db8::1")
        two = await proxied(server.address, "2001:db8::2")
        next_door = await proxied(server.address, "2001:db8:0:1::1")
        for client in (one, two, next_door):
            assert (await client.line()).endswith(":user is online\n")
        banned = await imkit("ban", "2001:db8::1", "--admin-socket", sock)
        assert banned == (0, "banned 2001:db8::/64 (the /64 of 2001:db8::1); 2 users removed\n")
        for client in (one, two):
            assert await client.line_matching("you are banned")
        late = await proxied(server.address, "2001:db8::abcd")
        assert await late.line() == "you are banned\n"
        assert await late.eof()
        await next_door.send("still here\n")
        assert await next_door.line_matching(r"^\[\[2001:db8:0:1::1\]:40000\].*:still here$")

        exact = await imkit("ban", "2001:db8:0:1::1/128", "--admin-socket", sock)
        assert exact == (0, "banned 2001:db8:0:1::1/128; 1 user removed\n")
        neighbour = await proxied(server.address, "2001:db8:0:1::2")
        assert (await neighbour.line()).endswith(":user is online\n")
        listed = await imkit("bans", "--json", "--admin-socket", sock)
        assert [(b["target"], b["kind"]) for b in json.loads(listed[1])] == [
            ("2001:db8::/64", "network"),
            ("2001:db8:0:1::1/128", "address"),
        ]
        lifted = await imkit("unban", "2001:db8::77", "--admin-socket", sock)
        assert lifted == (0, "unbanned 2001:db8::/64\n")
        mapped = await imkit("ban", "::ffff:198.51.100.9", "--admin-socket", sock)
        assert mapped == (0, "banned 198.51.100.9; 0 users removed\n")
    finally:
        await close_open_clients()
        server.stop()


async def test_imkit_mute_says_when_the_mute_ends(short_dir: Path) -> None:
    """Issue 25, item 8: a guest's mute ends with its connection (--for or not); an
    account's holds across reconnects (without --for, until unmute)."""
    real = start_accounts_server(short_dir)
    sock = str(real.admin_socket)
    try:
        guest = await joined(real.address, "sam")
        real.add("alex")
        quiet = await imkit("mute", "sam", "--admin-socket", sock)
        assert quiet == (0, "muted sam until it disconnects\n")
        status, out = await imkit("mute", "sam", "--for", "1h", "--admin-socket", sock)
        assert status == 0
        assert re.fullmatch(r"muted sam until \S+Z or until it disconnects\n", out), out
        forever = await imkit("mute", "Alex", "--admin-socket", sock)
        assert forever == (0, "muted alex until unmuted, also after reconnects (an account)\n")
        status, out = await imkit("mute", "alex", "--for", "1h", "--admin-socket", sock)
        assert status == 0
        assert re.fullmatch(r"muted alex until \S+Z, also after reconnects \(an account\)\n", out)
        # What it says is what happens: the guest speaks again once it has reconnected.
        await guest.aclose()
        back = await joined(real.address, "sam")
        await back.send("free again\n")
        assert (await back.line()).endswith("]sam:free again\n")
    finally:
        await close_open_clients()
        real.stop()


# ---------------------------------------------------------------------- a cluster


@needs_redis
async def test_in_a_cluster_a_ban_on_one_node_removes_a_user_of_another(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2)
    watcher = await client_from(one.address, "127.0.0.3")
    target = await client_from(two.address, "127.0.0.2")
    assert (await watcher.line()).endswith(":user is online\n")
    await target.send("rename|tom\n")
    assert await target.line() == "you have updated user name: tom\n"
    muted = one.admin("mute", "tom", "--for", "1h")
    assert muted.returncode == 0, muted.stderr
    with anyio.fail_after(10):  # the mute reaches node two through Redis
        while True:
            await target.send("hi\n")
            if (await target.line()).startswith("error: you are muted (until "):
                break
    banned = await anyio.to_thread.run_sync(lambda: one.admin("ban", "tom", "--reason", "spam"))
    assert banned.returncode == 0, banned.stderr
    assert banned.stdout.startswith("banned 127.0.0.2; 1 user removed")
    assert await target.line() == "you are banned: spam\n"
    assert await target.eof()
    host, port = split_addr(two.address)
    again = LineClient(await anyio.connect_tcp(host, port, local_host="127.0.0.2"))
    assert await again.line() == "you are banned: spam\n"
    listed = await anyio.to_thread.run_sync(lambda: two.admin("bans", "--json"))
    assert [b["target"] for b in json.loads(listed.stdout)] == ["127.0.0.2"]
    lifted = await anyio.to_thread.run_sync(lambda: two.admin("unban", "127.0.0.2"))
    assert lifted.returncode == 0, lifted.stderr
    with anyio.fail_after(10):
        while True:  # the unban reaches node two through Redis
            try:
                back = await client_from(two.address, "127.0.0.2")
                break
            except AssertionError:
                await anyio.sleep(0.1)
    for client in (watcher, back, again):
        await client.aclose()


@needs_redis
async def test_with_hidden_addresses_a_name_still_bans_the_real_address(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, "--hide-addresses")
    target = await client_from(two.address, "127.0.0.2")
    await target.send("rename|hid\n")
    assert await target.line() == "you have updated user name: hid\n"
    banned = await anyio.to_thread.run_sync(lambda: one.admin("ban", "hid"))
    assert banned.returncode == 0, banned.stderr
    assert banned.stdout.startswith("banned 127.0.0.2; 1 user removed")
    assert await target.line() == "you are banned\n"
    await target.aclose()


@needs_redis
async def test_in_a_cluster_a_guest_s_ipv6_ban_covers_its_64_on_every_node(
    cluster: Cluster,
) -> None:
    """Issue 25, item 6: the ban travels in the shared stream as its /64, and the node
    that did not make it refuses the rest of the /64 too."""
    one, two = cluster.start_nodes(2, "--proxy-protocol", "127.0.0.0/8")
    guest = await proxied(two.address, "2001:db8::5")
    assert (await guest.line()).endswith(":user is online\n")
    await guest.send("rename|sam\n")
    assert await guest.line() == "you have updated user name: sam\n"
    banned = await anyio.to_thread.run_sync(lambda: one.admin("ban", "sam"))
    assert banned.returncode == 0, banned.stderr
    assert banned.stdout == "banned 2001:db8::/64 (the /64 of 2001:db8::5); 1 user removed\n"
    assert await guest.line() == "you are banned\n"
    for node in (two, one):
        neighbour = await proxied(node.address, "2001:db8::6")
        assert await neighbour.line() == "you are banned\n"
    elsewhere = await proxied(two.address, "2001:db8:1::6")
    assert (await elsewhere.line()).endswith(":user is online\n")
    for client in (guest, elsewhere):
        await client.aclose()
