"""Graceful shutdown of a real `imkit serve` process on SIGTERM, SIGINT and SIGHUP."""

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


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


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
