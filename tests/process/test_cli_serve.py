"""`imkit serve` as a real subprocess, talked to exactly as netcat would.

Here the tests that run imkit subprocesses; the others are in unit/test_cli_serve.py."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.support import (
    ServerProcess,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)


def nc_connect(address: str) -> socket.socket:
    sock = socket.create_connection(split_addr(address), timeout=10)
    return sock


def read_lines(sock: socket.socket, count: int) -> list[bytes]:
    """Exactly ``count`` lines, as raw bytes with their newlines."""
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        assert chunk, f"EOF after {data!r}"
        data += chunk
    lines = data.splitlines(keepends=True)
    assert len(lines) == count, lines
    return lines


def me(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def test_raw_bytes_like_netcat(server_process: ServerProcess) -> None:
    a = nc_connect(server_process.address)
    assert read_lines(a, 1) == [f"[{me(a)}]{me(a)}:user is online\n".encode()]
    # CRLF, three lines in one write, and a line split across writes
    a.sendall(b"rename|nc\r\nhello\r\nwho\n")
    assert read_lines(a, 3) == [
        b"you have updated user name: nc\n",
        f"[{me(a)}]nc:hello\n".encode(),
        f"[{me(a)}]nc:online...\n".encode(),
    ]
    for piece in (b"spl", b"it li", b"ne\r", b"\n"):
        a.sendall(piece)
        time.sleep(0.05)
    assert read_lines(a, 1) == [f"[{me(a)}]nc:split line\n".encode()]
    a.sendall(b"to|nc\n")
    assert read_lines(a, 1) == [b"invalid message\n"]
    a.close()


def test_logs_the_address_it_really_listens_on(server_process: ServerProcess) -> None:
    host, port = split_addr(server_process.address)
    assert host == "127.0.0.1" and port > 0  # --port 0 picked a free port
    nc_connect(server_process.address).close()


@pytest.mark.skipif(shutil.which("nc") is None, reason="netcat is not installed")
def test_real_netcat(server_process: ServerProcess) -> None:
    host, port = split_addr(server_process.address)
    result = subprocess.run(
        ["nc", "-q", "1", host, str(port)],
        input=b"rename|netcat\nwho\n",
        capture_output=True,
        timeout=20,
    )
    lines = result.stdout.splitlines()
    assert lines[0].endswith(b":user is online")
    assert lines[1:] == [b"you have updated user name: netcat", lines[2]]
    assert lines[2].endswith(b"]netcat:online...")


def test_options_come_from_the_environment() -> None:
    proc = start_server_process(env=imkit_env(IMKIT_IDLE_TIMEOUT="0.5", IMKIT_LOG_LEVEL="debug"))
    try:
        a = nc_connect(proc.address)
        read_lines(a, 1)
        start = time.monotonic()
        assert read_lines(a, 1) == [b"you are forced offline\n"]
        assert time.monotonic() - start < 5
        assert a.recv(100) == b""
    finally:
        proc.stop()
    assert "DEBUG configuration: ServerConfig(" in proc.stderr()
    assert "idle_timeout=0.5" in proc.stderr()


def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_imkit("serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_sigterm_says_bye_and_exits_0() -> None:
    proc = start_server_process("--idle-timeout", "0")
    a = nc_connect(proc.address)
    read_lines(a, 1)
    start = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert read_lines(a, 1) == [b"the server is shutting down\n"]
    assert a.recv(100) == b""
    a.close()
    assert proc.proc.wait(10) == 0
    assert time.monotonic() - start < 10
    assert "Traceback" not in proc.stderr()
