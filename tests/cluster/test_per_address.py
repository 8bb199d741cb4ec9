"""Per-address limits (issue 14, requirement 3): ``--max-per-ip`` and ``--connect-rate``.

The rules of :mod:`imkit.transport.limits` with a fake clock, then over real TCP: clients
bind their socket to 127.0.0.2 (127.0.0.1 and ::1 are exempt), against an in-process
server, a real ``imkit serve`` and a two-node cluster.

Here the tests that need a real redis-server; the others are in
process/test_per_address.py, server/test_per_address.py, unit/test_per_address.py."""

from __future__ import annotations

import anyio

from tests.support.cluster import Cluster
from tests.support.per_address import connect_from, online_from, refused

# ------------------------------------------------------------------ over real TCP


async def test_the_limit_is_per_node_in_a_cluster(cluster: Cluster) -> None:
    one, two = await anyio.to_thread.run_sync(lambda: cluster.start_nodes(2, "--max-per-ip", "2"))
    on_one = [await online_from("127.0.0.2", one.address) for _ in range(2)]
    line = "too many connections from your address (2 at most)\n"
    await refused(await connect_from("127.0.0.2", one.address), line)
    # node 2 has its own count: the two on node 1 do not count there
    on_two = [await online_from("127.0.0.2", two.address) for _ in range(2)]
    await refused(await connect_from("127.0.0.2", two.address), line)
    for client in on_one + on_two:
        await client.aclose()
