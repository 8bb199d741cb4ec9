"""Graceful shutdown of a real `imkit serve` process on SIGTERM, SIGINT and SIGHUP, also
in the middle of a connection storm (the storms are bounded and stay on loopback).

Here the tests that run imkit subprocesses; the others are in cluster/test_shutdown.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import imkit_env, split_addr, start_server_process
from tests.support.shutdown import (
    STORM_SECONDS,
    json_socket,
    read_until,
    reset_storm,
    stop_in_a_storm,
    wait_for_storm,
)


# SIGHUP: a server started in a terminal that closes must stop as gracefully.
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_shutdown_says_bye_flushes_and_cleans_up(signum: int) -> None:
    folder = tempfile.mkdtemp(prefix="imkit-", dir="/tmp")
    admin_path = Path(folder) / "admin.sock"
    server = start_server_process(
        "--idle-timeout", "0", "--admin-socket", str(admin_path), env=imkit_env()
    )
    try:
        address = split_addr(server.address)
        text = socket.create_connection(address)
        late_reader = socket.create_connection(address)
        j = socket.create_connection(address)
        j.sendall(b'{"type":"hello","name":"bot"}\n')
        read_until(j, b'"welcome"')
        text.sendall(b"rename|alex\nlast words before shutdown\n")
        read_until(text, b"alex:last words")  # accepted: the server echoed it
        assert admin_path.exists()

        started = time.monotonic()
        server.proc.send_signal(signum)
        # the one that had not read yet gets what was accepted, then the bye
        received = read_until(late_reader, b"the server is shutting down\n")
        assert b"alex:last words before shutdown\n" in received
        assert received.endswith(b"the server is shutting down\n")
        bye = read_until(j, b'"bye"').splitlines()[-1]
        assert json.loads(bye) == {
            "type": "bye",
            "reason": "shutdown",
            "message": "the server is shutting down",
        }
        assert read_until(text, b"shutting down").endswith(b"the server is shutting down\n")
        for sock in (text, late_reader, j):
            sock.close()
        assert server.proc.wait(15) == 0
        assert time.monotonic() - started < 10
        assert not admin_path.exists()
        assert "Traceback" not in server.stderr()
        with pytest.raises(OSError):
            socket.create_connection(address, timeout=2)
    finally:
        server.stop()
        os.rmdir(folder) if os.path.isdir(folder) and not os.listdir(folder) else None


def test_a_second_signal_exits_at_once() -> None:
    server = start_server_process("--idle-timeout", "0")
    stubborn = socket.create_connection(split_addr(server.address))  # never reads or closes
    try:
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        assert "Traceback" not in server.stderr()
    finally:
        stubborn.close()
        server.stop()


# Issue 26, item 1: a signal stops accepting at once, whatever the accept queue holds,
# and the server exits within a few seconds while the storm goes on.
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"]
)
def test_a_signal_in_a_reset_storm_exits_within_seconds(signum: int) -> None:
    server = start_server_process("--idle-timeout", "0", "--rate", "0", env=imkit_env())
    try:
        bot = json_socket(server.address)
        with reset_storm(server.address) as made:
            wait_for_storm(made)
            stop_in_a_storm(server, bot, signum)
        # Accepting stopped at the signal: at most what one wake of the accept loop had
        # taken already (64) was let in after it (before the fix: thousands).
        after = server.stderr().split(f"received {signal.Signals(signum).name}", 1)[1]
        assert after.count(": connected") < 200
    finally:
        server.stop()


def test_a_second_signal_in_a_reset_storm_exits_at_once() -> None:
    server = start_server_process("--idle-timeout", "0", "--rate", "0", env=imkit_env())
    stubborn = socket.create_connection(split_addr(server.address))  # never reads or closes
    stubborn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        with reset_storm(server.address) as made:
            wait_for_storm(made)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(STORM_SECONDS + 10) == 0
            exit_after = time.monotonic() - started
            assert exit_after < 3, f"exited {exit_after:.1f}s after the second signal"
        assert "Traceback" not in server.stderr()
    finally:
        stubborn.close()
        server.stop()
