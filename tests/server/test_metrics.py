"""``--metrics``: /metrics scraped over real HTTP and read with prometheus_client's own
parser, counters against the exact traffic a test sends, /healthz and its 503s (full,
store, shutdown), and the option's errors.

Here the tests that need an in-process server on loopback; the others are in
process/test_metrics.py, unit/test_metrics.py."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from imkit import __version__
from imkit.client import admin as admin_client
from imkit.errors import ServeError
from imkit.server import Server, ServerConfig
from imkit.server.metrics import LoopReader, Metrics, MetricsServer, Observed
from tests.support import (
    TIMEOUT,
    LineClient,
    joined,
    run_server,
    split_addr,
)
from tests.support.metrics import Scraper, get, value

REASONS = ("closed", "idle", "kicked", "slow_consumer", "shutdown")


def config(**overrides: Any) -> ServerConfig:
    return ServerConfig(**{"port": 0, "idle_timeout": 0, "metrics": "127.0.0.1:0", **overrides})


# ----------------------------------------------------------------- in process


async def test_counters_move_by_exactly_the_traffic_sent() -> None:
    async with run_server(config()) as server:
        scrape = Scraper(server)
        start = await scrape.metrics()
        assert value(start, "imkit_connections_accepted_total") == 0
        assert value(start, "imkit_users_online") == 0
        assert value(start, "imkit_delivery_latency_seconds_count") == 0

        address = server.addresses[0]
        alex, bob = await joined(address, "alex"), await joined(address, "bob")
        await alex.line()  # bob is online
        before = await scrape.metrics()
        sent = b"one\ntwo\nthree\nto|bob|four\nto|bob|five\n"
        await alex.send(sent)
        received = await alex.lines(3) + await bob.lines(5)
        assert received[-1] == "alex say: five\n"
        after = await scrape.metrics()

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("imkit_messages_received_total", kind="public") == 3
        assert moved("imkit_messages_received_total", kind="private") == 2
        assert moved("imkit_deliveries_total") == 3 * 2 + 2
        assert moved("imkit_received_bytes_total") == len(sent)
        assert moved("imkit_sent_bytes_total") == sum(len(line.encode()) for line in received)
        assert 1 <= moved("imkit_delivery_latency_seconds_count") <= 5  # rounds, not messages
        assert 0 <= moved("imkit_delivery_latency_seconds_sum") < TIMEOUT
        assert value(after, "imkit_users_online") == 2
        assert value(after, "imkit_connections_open") == 2
        assert value(after, "imkit_outbox_queued_bytes") == 0
        for reason in REASONS:
            assert value(after, "imkit_disconnects_total", reason=reason) == 0

        assert server.admin_socket is not None
        reply = await admin_client.request(
            server.admin_socket.path, {"type": "kick", "name": "bob"}
        )
        assert reply == {"type": "ok", "name": "bob"}
        assert await bob.eof()
        await bob.aclose()
        await alex.aclose()
        end = await scrape.until(lambda s: value(s, "imkit_connections_open") == 0)
        assert value(end, "imkit_disconnects_total", reason="kicked") == 1
        assert value(end, "imkit_disconnects_total", reason="closed") == 1
        # Every connection accepted is refused, open, or has ended for one reason.
        assert value(end, "imkit_connections_accepted_total") == 2
        assert sum(value(end, "imkit_disconnects_total", reason=r) for r in REASONS) == 2
        assert value(end, "imkit_users_online") == 0


async def test_refusals_by_reason_and_a_full_node_is_unhealthy() -> None:
    async with run_server(config(max_clients=2, password="pw")) as server:
        scrape = Scraper(server)
        member = await LineClient.connect(server.addresses[0])
        await member.send(b"pass|pw\n")
        await member.line()  # online
        wrong = await LineClient.connect(server.addresses[0])
        await wrong.send(b"pass|guess\n")
        assert await wrong.line() == "wrong password\n"
        assert await wrong.eof()
        await wrong.aclose()
        await scrape.until(lambda s: value(s, "imkit_connections_open") == 1)
        assert await scrape.health() == (200, {"status": "ok", "users": 1, "connections": 1})

        waiting = await LineClient.connect(server.addresses[0])  # the second of two
        body = await scrape.health_until(503)
        assert body == {
            "status": "unavailable",
            "reason": "full",
            "message": "the server is full (2 clients)",
        }
        extra = await LineClient.connect(server.addresses[0])
        assert await extra.line() == "the server is full (2 clients)\n"
        samples = await scrape.metrics()
        assert value(samples, "imkit_connections_refused_total", reason="full") == 1
        assert value(samples, "imkit_connections_refused_total", reason="unauthorized") == 1
        assert value(samples, "imkit_connections_refused_total", reason="tls_handshake") == 0
        assert value(samples, "imkit_connections_accepted_total") == 4
        assert value(samples, "imkit_users_online") == 1  # `waiting` is not in yet
        await waiting.aclose()
        await scrape.health_until(200)


async def test_healthz_is_503_while_the_store_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with run_server(config(db=str(path))) as server:
        scrape = Scraper(server)
        alex = await joined(server.addresses[0], "alex")
        assert await scrape.health() == (200, {"status": "ok", "users": 1, "connections": 1})
        await alex.send(b"kept\n")
        await alex.line()
        await scrape.until(lambda s: value(s, "imkit_store_commit_duration_seconds_count") >= 1)

        path.rename(tmp_path / "elsewhere.db")  # SQLite would go on writing to it
        await alex.send(b"lost\n")
        assert await alex.line() == f"[{alex.addr}]alex:lost\n"  # delivered; then noticed
        body = await scrape.health_until(503)
        assert body["status"] == "unavailable" and body["reason"] == "store_unavailable"
        assert "was removed" in body["message"]
        samples = await scrape.metrics()
        assert value(samples, "imkit_store_writable") == 0
        assert value(samples, "imkit_store_failed_batches_total") == 1
        await alex.send(b"refused\n")
        assert (await alex.line()).startswith("error: the message was not sent")
        samples = await scrape.metrics()
        assert value(samples, "imkit_messages_refused_total", reason="unavailable") == 1
        assert value(samples, "imkit_messages_received_total", kind="public") == 2

        (tmp_path / "elsewhere.db").rename(path)  # the same file is back
        assert (await scrape.health_until(200))["status"] == "ok"
        assert value(await scrape.metrics(), "imkit_store_writable") == 1


async def test_healthz_is_503_from_the_moment_it_shuts_down() -> None:
    async with run_server(config()) as server:
        scrape = Scraper(server)
        assert server.metrics is not None
        host, port = split_addr(server.metrics.address)
        alex = await joined(server.addresses[0])  # it holds the shutdown open (its bye)
        assert (await scrape.health())[0] == 200
        server.stop()
        status, body = await scrape.health()
        assert (status, body["reason"]) == (503, "shutting_down")
        status, _, text = await scrape.get("/metrics")  # metrics are still served
        assert status == 200 and "imkit_users_online" in text
        assert await alex.line() == "the server is shutting down\n"
        await alex.aclose()
        with anyio.fail_after(TIMEOUT):
            await server.stopped.wait()
        with pytest.raises(ConnectionRefusedError):  # closed with the server
            socket.create_connection((host, port), timeout=TIMEOUT).close()


async def test_other_paths_and_methods(server_with_metrics: Scraper) -> None:
    scrape = server_with_metrics
    assert (await scrape.get("/"))[0] == 404
    assert (await scrape.get("/healthz/x"))[0] == 404

    def post_healthz() -> int:
        request = urllib.request.Request(scrape.base + "/healthz", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                return error.code

    assert await anyio.to_thread.run_sync(post_healthz) == 405
    samples = await scrape.metrics()
    assert value(samples, "imkit_build_info", version=__version__) == 1
    assert ("process_cpu_seconds_total", frozenset()) in samples


async def test_a_loop_that_does_not_answer_gets_503_not_a_wait() -> None:
    stuck = asyncio.new_event_loop()  # never run: what it is asked to do is never done
    reader = LoopReader(cast(Observed, None), stuck, timeout=0.05)
    endpoint = MetricsServer(Metrics(reader, max_clients=10), "127.0.0.1", 0)
    endpoint.start()
    base = f"http://{endpoint.address}"
    try:
        status, _, text = await anyio.to_thread.run_sync(get, base + "/metrics")
        assert (status, text) == (503, "the event loop did not answer within 0.05 s\n")
        status, _, body = await anyio.to_thread.run_sync(get, base + "/healthz")
        assert (status, json.loads(body)["reason"]) == (503, "unresponsive")
        stuck.close()
        status, _, body = await anyio.to_thread.run_sync(get, base + "/healthz")
        assert (status, json.loads(body)["message"]) == (503, "the server has stopped")
    finally:
        stuck.close()
        await endpoint.close()


@pytest.fixture
async def server_with_metrics() -> AsyncIterator[Scraper]:
    async with run_server(config()) as server:
        yield Scraper(server)


# ------------------------------------------------------------------- imkit serve


async def test_a_malformed_address_given_in_process_is_a_serve_error() -> None:
    server = Server(config(metrics="nope"))
    with pytest.raises(ServeError, match="^--metrics: 'nope' is not HOST:PORT"):
        await server.listen()
    assert server.admin_socket is None and server.metrics is None
