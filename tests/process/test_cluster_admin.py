"""Cluster mode end to end (issue 12): the admin commands on any node act on the whole
cluster (who with its NODE column, kick, stats, history), and a node refuses a cluster
whose data format it does not understand.

Here the tests that run imkit subprocesses; the others are in
cluster/test_cluster_admin.py."""

from __future__ import annotations

from tests.support import run_imkit


def test_start_errors_of_a_cluster_node_are_one_line() -> None:
    """Refusals before a node joins: a file option that has no meaning in a cluster
    (usage, exit 2), a URL redis-py cannot read and a Redis nobody answers on (exit 1)."""
    for flag in (["--db", "x.db"], ["--fsync"]):
        result = run_imkit("serve", "--port", "0", "--cluster", "redis://127.0.0.1:1", *flag)
        assert result.returncode == 2, result.stderr
        assert f"{flag[0]} does not apply with --cluster" in result.stderr
    result = run_imkit("serve", "--port", "0", "--cluster", "http://127.0.0.1:1")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: --cluster http://127.0.0.1:1: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    result = run_imkit("serve", "--port", "0", "--cluster", "redis://:secret@127.0.0.1:1")
    assert result.returncode == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: cannot reach the cluster's Redis at redis://***@127.0.0.1:1")
    assert "secret" not in result.stderr  # the password is never shown
