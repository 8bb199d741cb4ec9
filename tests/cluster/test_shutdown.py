"""Graceful shutdown of a real `imkit serve` process on SIGTERM, SIGINT and SIGHUP, also
in the middle of a connection storm (the storms are bounded and stay on loopback).

Here the tests that need a real redis-server; the others are in
process/test_shutdown.py."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

from tests.support.cluster import Cluster, RedisServer
from tests.support.shutdown import json_socket, reset_storm, stop_in_a_storm, wait_for_storm


def test_a_signal_to_a_cluster_node_in_a_reset_storm_exits_within_seconds(
    redis_server: RedisServer,
) -> None:
    # The case: the storm goes to every node in turn; one node is signalled.
    folder = Path(tempfile.mkdtemp(prefix="imkit-c-", dir="/tmp"))
    os.chmod(folder, 0o700)
    cluster = Cluster(redis_server, folder)
    try:
        nodes = cluster.start_nodes(2)
        bot = json_socket(nodes[0].address)
        with reset_storm(*(node.address for node in nodes)) as made:
            wait_for_storm(made)
            stop_in_a_storm(nodes[0].process, bot, signal.SIGTERM)
            assert nodes[1].alive()
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
