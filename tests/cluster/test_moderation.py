"""Bans and mutes (issue 14, points 1, 2 and 7) over real TCP: clients come from their
own loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a ban can hit one and not
another. A ban removes the matching users at once and refuses them at connect, lasts
across a restart, ends by itself (an injected clock), and is lifted by unban; a guest's
name bans its address. A mute refuses messages and renames in both modes. In a cluster
a ban made on one node removes a user of the other, and a mute reaches any node.

Here the tests that need a real redis-server; the others are in
process/test_moderation.py, server/test_moderation.py, unit/test_moderation.py."""

from __future__ import annotations

import json

import anyio

from tests.support import (
    LineClient,
    client_from,
    proxied,
    split_addr,
)
from tests.support.cluster import Cluster

# ---------------------------------------------------------------------- a cluster


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
