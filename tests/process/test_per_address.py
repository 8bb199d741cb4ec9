"""Per-address limits (issue 14, requirement 3): ``--max-per-ip`` and ``--connect-rate``.

The rules of :mod:`imkit.transport.limits` with a fake clock, then over real TCP: clients
bind their socket to 127.0.0.2 (127.0.0.1 and ::1 are exempt), against an in-process
server, a real ``imkit serve`` and a two-node cluster.

Here the tests that run imkit subprocesses; the others are in
cluster/test_per_address.py, server/test_per_address.py, unit/test_per_address.py."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from imkit.client import admin as admin_client
from tests.support import (
    imkit_env,
    run_imkit,
    start_server_process,
)
from tests.support.per_address import connect_from, online_from, refused

# ------------------------------------------------------------------ over real TCP


def test_connect_rate_through_imkit_serve_its_log_and_stats(short_dir: Path) -> None:
    socket_path = str(short_dir / "admin.sock")
    process = start_server_process(
        *("--idle-timeout", "0", "--max-per-ip", "2", "--log-format", "json"),
        *("--admin-socket", socket_path),
        env=imkit_env(IMKIT_CONNECT_RATE="3/60s"),
    )
    try:

        async def connections_down_to(count: int) -> None:
            """Until the server has seen the closed connections go (a machine under
            load may take a while; a fixed sleep was flaky)."""
            with anyio.fail_after(10):
                while True:
                    reply = await admin_client.request(Path(socket_path), {"type": "stats"})
                    if reply["connections_now"] <= count:
                        return
                    await anyio.sleep(0.05)

        async def scenario() -> None:
            address = process.address
            a = await online_from("127.0.0.2", address)
            b = await online_from("127.0.0.2", address)  # two of three new connections
            await refused(
                await connect_from("127.0.0.2", address),
                "too many connections from your address (2 at most)\n",
            )  # the refusal took no token
            await a.aclose()
            await connections_down_to(1)  # the server has seen a leave
            c = await online_from("127.0.0.2", address)  # the third
            await b.aclose()
            await c.aclose()
            await connections_down_to(0)  # not refused for max-per-ip: both are gone
            for _ in range(3):  # both closed; but three in a minute is all
                await refused(
                    await connect_from("127.0.0.2", address),
                    "too many new connections from your address: at most 3 every minute\n",
                )
            local = [await online_from("127.0.0.1", address) for _ in range(5)]  # exempt
            for client in local:
                await client.aclose()

        anyio.run(scenario)
        stats = run_imkit("stats", "--json", "--admin-socket", socket_path)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["refused_per_address"] == 4
        table = run_imkit("stats", "--admin-socket", socket_path).stdout.splitlines()
        row = next(line for line in table if line.startswith("refused: too many from one"))
        assert row.split()[-1] == "4"
    finally:
        assert process.stop() == 0
    logged = [json.loads(line) for line in process.log if line.startswith("{")]
    refusals = [entry for entry in logged if entry["event"] == "too_many_connections"]
    assert len(refusals) == 1, refusals  # four refusals of one address in a minute
    [entry] = refusals
    assert (entry["network"], entry["reason"], entry["limit"]) == ("127.0.0.2", "max_per_ip", 2)
    assert entry["level"] == "warning" and entry["addr"].startswith("127.0.0.2:")
