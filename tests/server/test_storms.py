"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.

Here the tests that need an in-process server on loopback; the others are in
process/test_storms.py, slow/test_storms.py, unit/test_storms.py."""

from __future__ import annotations

import socket
import time

import anyio

from imkit.operator import answers
from imkit.server import ServerConfig
from tests.support import (
    LineClient,
    joined,
    run_server,
    split_addr,
)

# ------------------------------------------------------------------------- bursts


async def _read_count(client: LineClient, marker: bytes, count: int) -> int:
    """Read until ``count`` lines containing ``marker`` or EOF; how many came."""
    seen = 0
    buffer = b""
    while seen < count:
        try:
            data = await client.stream.receive(1 << 16)
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        seen += sum(marker in line for line in lines)
    return seen


async def test_a_burst_of_joins_is_announced_to_everyone_in_one_order() -> None:
    # The joins a round takes in are announced together (Hub.announce_joins): everyone
    # must still see every online line once, in the server's order of arrival, and each
    # newcomer its own line first and then the lines of those who came after it.
    count = 300
    async with run_server(ServerConfig(port=0, idle_timeout=0, max_per_ip=0)) as server:
        address = server.addresses[0]
        watcher = await LineClient.connect(address)
        await watcher.request(type="hello")
        clients: list[LineClient] = []

        async def connect() -> None:
            clients.append(await LineClient.connect(address))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(connect)
            order = [(await watcher.json_of_type("presence"))["name"] for _ in range(count)]
            assert sorted(order) == sorted(client.addr for client in clients)
            for client in clients:
                expected = order[order.index(client.addr) :]
                got = [await client.line() for _ in expected]
                assert got == [f"[{name}]{name}:user is online\n" for name in expected]
            users = await watcher.request(type="who")
            assert [u["name"] for u in users["users"]][1:] == order
        for client in clients:
            await client.aclose()


async def test_bursts_within_the_default_limits_reach_a_reader_that_keeps_up() -> None:
    senders, per_sender, size = 8, 50, 4000  # 50 lines: within the default --burst
    async with run_server(ServerConfig(port=0, idle_timeout=0)) as server:
        reader = await joined(server.addresses[0], "reader")
        clients = [await joined(server.addresses[0], f"s{i}") for i in range(senders)]
        counts: dict[str, int] = {}
        total = senders * per_sender

        async def count(name: str, client: LineClient) -> None:
            counts[name] = await _read_count(client, b"]s", total)

        body = b"x" * size
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(count, "reader", reader)
                for i, client in enumerate(clients):
                    tg.start_soon(count, f"s{i}", client)
                for client in clients:
                    burst = b"".join(b"%d %s\n" % (k, body) for k in range(per_sender))
                    tg.start_soon(client.send, burst)
        assert counts["reader"] == total
        assert all(counts[f"s{i}"] == total for i in range(senders))
        assert server.hub.stats.slow_consumers == 0


async def test_a_stalled_reader_holds_the_others_up_once_at_most() -> None:
    """Backpressure must not let a reader that stopped reading stall the chat: it is
    waited for once (CONGESTION_TIMEOUT), then dropped as a slow consumer as before."""
    limit = 64 * 1024
    config = ServerConfig(port=0, idle_timeout=0, rate=0, max_queue=limit, max_line=16384)
    async with run_server(config) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(split_addr(server.addresses[0]))  # never reads
        talker = await joined(server.addresses[0], "talker")
        listener = await joined(server.addresses[0], "listener")
        await talker.line()
        body = "z" * 10000
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(talker.drain)
            with anyio.fail_after(60):
                for i in range(600):  # 6 MB: far past the stalled socket's buffers
                    await talker.send(f"{i} {body}\n")
                    line = await listener.line_matching(rf"talker:{i} ")
                    assert line == f"[{talker.addr}]talker:{i} {body}\n"
            tg.cancel_scope.cancel()
        assert server.hub.stats.slow_consumers == 1
        counters = answers.stats(server)  # what `imkit stats` shows
        assert counters["backpressure_given_up"] == 1  # waited for once, then not again
        assert counters["backpressure_pauses"] >= 1
        assert time.monotonic() - started < 30
        stalled.close()
