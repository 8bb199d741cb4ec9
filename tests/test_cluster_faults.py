"""The cluster under faults (issue 26): redis-py's warnings at start. Real nodes, a
real redis-server."""

from __future__ import annotations

import anyio
import pytest

from tests.redis_support import Cluster, needs_redis

pytestmark = [needs_redis, pytest.mark.anyio]


async def test_a_node_starts_without_warnings_from_redis_py(cluster: Cluster) -> None:
    node = cluster.start_node()
    await anyio.sleep(0.5)  # past the first beat
    assert "Warning" not in node.log(), node.log()
