"""`imkit bench` against a real server: a smoke run of seconds, counts checked."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support import (
    ServerProcess,
    run_imkit,
    split_addr,
    start_server_process,
)


@pytest.fixture
def bench_server() -> Iterator[ServerProcess]:
    server = start_server_process("--idle-timeout", "0", "--rate-exempt", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def web_bench_server() -> Iterator[tuple[int, str]]:
    """A server with a web port: (its chat port, its WebSocket URL)."""
    server = start_server_process(
        "--idle-timeout", "0", "--rate-exempt", "127.0.0.1", "--web", "127.0.0.1:0"
    )
    found = re.search(r"web on http://(\S+?)/", "".join(server.log))
    assert found, server.log
    yield split_addr(server.address)[1], f"ws://{found.group(1)}/ws"
    server.stop()


def bench(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return run_imkit("bench", "--port", str(port), *args, timeout=60)


def test_broadcast_counts_every_delivery(bench_server: ServerProcess) -> None:
    port = split_addr(bench_server.address)[1]
    result = bench(port, "--clients", "12", "--senders", "3", "--duration", "1.5", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] > 0 and summary["lost"] == 0
    assert summary["deliveries"] == summary["expected_deliveries"] == summary["sent"] * 12
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert summary["deliveries_per_s"] > 0
    assert "deliveries" in result.stderr  # progress while it ran


@pytest.mark.parametrize("transport", ["ws", "json"])
def test_websocket_and_json_lines_clients(
    web_bench_server: tuple[int, str], transport: str
) -> None:
    port, url = web_bench_server
    how = ["--web", url] if transport == "ws" else ["--json-lines"]
    result = bench(port, *how, "--clients", "8", "--senders", "2", "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["transport"] == transport
    assert summary["sent"] > 0 and summary["lost"] == 0
    assert summary["deliveries"] == summary["expected_deliveries"] == summary["sent"] * 8
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    private = bench(port, *how, "--scenario", "private", "--clients", "4", "--duration", "0.5")
    assert private.returncode == 0, private.stderr
    lines = private.stdout.splitlines()
    assert lines[0].startswith("scenario     private: 2 pairs")
    sent = int(lines[1].split()[1].replace(",", ""))
    assert sent > 0 and lines[2].startswith(f"deliveries   {sent:,} of {sent:,}")


def test_web_errors(web_bench_server: tuple[int, str]) -> None:
    port, url = web_bench_server
    chat = bench(port, "--web", f"127.0.0.1:{port}", "--duration", "1")  # not a web port
    assert chat.returncode == 3
    assert chat.stderr.startswith(f"Error: no WebSocket server at ws://127.0.0.1:{port}/ws")
    wrong_path = bench(port, "--web", url.replace("/ws", "/chat"), "--duration", "1")
    assert wrong_path.returncode == 3
    assert "refused the WebSocket at /chat (HTTP 404)" in wrong_path.stderr
    for bad in ("wss://127.0.0.1:1/ws", "http://127.0.0.1:1/ws", "ws://127.0.0.1/ws"):
        assert bench(port, "--web", bad).returncode == 2
    assert bench(port, "--web", url, "--json-lines").returncode == 2


def test_private_pairs(bench_server: ServerProcess) -> None:
    port = split_addr(bench_server.address)[1]
    result = bench(port, "--scenario", "private", "--clients", "10", "--duration", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("scenario     private: 5 pairs")
    sent = int(lines[1].split()[1].replace(",", ""))
    assert sent > 0
    assert lines[2].startswith(f"deliveries   {sent:,} of {sent:,}")
    assert lines[3].startswith("latency      p50 ")
    # the bench's clients are gone afterwards (the server may take a moment to notice)
    deadline = time.monotonic() + 10
    while True:
        admin = run_imkit("who", "--json", "--port", str(port))
        if json.loads(admin.stdout) == [] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert json.loads(admin.stdout) == []


def test_no_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        result = bench(probe.getsockname()[1], "--duration", "1")
    assert result.returncode == 3
    assert result.stderr.startswith("Error: cannot connect to 127.0.0.1")


def test_more_senders_than_clients_is_a_usage_error() -> None:
    result = bench(8888, "--clients", "2", "--senders", "3")
    assert result.returncode == 2
