"""The PROXY protocol (``--proxy-protocol CIDR``): the parser on its own (both versions,
every malformed form, any split), then over real TCP: the carried address is the user's
in presence lines, default names and ``imkit who``; a trusted connection without a valid
header is closed; a header from an untrusted address is only chat text; and in a cluster
of two nodes, the other node's users see the carried address too.

Here the tests that need a real redis-server; the others are in
server/test_proxy_protocol.py, unit/test_proxy_protocol.py."""

from __future__ import annotations

from tests.support import LineClient
from tests.support.cluster import Cluster
from tests.support.proxy_protocol import V1, v2

# ---------------------------------------------------------------------- a cluster


async def test_in_a_cluster_every_node_sees_the_carried_address(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--proxy-protocol", "127.0.0.0/8")
    watcher = await LineClient.connect(two.address)
    await watcher.send(V1)
    assert await watcher.line() == "[203.0.113.7:51000]203.0.113.7:51000:user is online\n"
    user = await LineClient.connect(one.address)
    await user.send(v2("198.51.100.9", 4000))
    line = "[198.51.100.9:4000]198.51.100.9:4000:user is online\n"
    assert await user.line() == line
    assert await watcher.line() == line
    who = one.admin("who", "--json")
    assert who.returncode == 0, who.stderr
    assert "198.51.100.9:4000" in who.stdout and "203.0.113.7:51000" in who.stdout
    for client in (watcher, user):
        await client.aclose()
