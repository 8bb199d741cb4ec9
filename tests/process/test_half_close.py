"""A client that half-closes (sends its lines, then ends its writing side, as
``printf 'who\\nhello\\n' | nc -N HOST PORT`` does) still gets every reply it is owed,
then EOF: on one node, and on a cluster node, whose replies come back through Redis
after the client's end of stream (issue 26, item 7)."""

from __future__ import annotations

import socket

from tests.support import TIMEOUT, split_addr, start_server_process


def half_closed(address: str, lines: bytes) -> tuple[str, list[str]]:
    """Send ``lines``, end our writing side, read to the server's EOF: our address and
    the lines received (an AssertionError if the server never ends the connection)."""
    sock = socket.create_connection(split_addr(address), timeout=TIMEOUT)
    host, port = sock.getsockname()[:2]
    try:
        sock.sendall(lines)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    return f"{host}:{port}", data.decode().splitlines()


def test_a_half_closed_text_client_gets_its_replies_on_one_node() -> None:
    server = start_server_process("--idle-timeout", "0")
    try:
        addr, received = half_closed(server.address, b"who\nhello\n")
        assert received == [
            f"[{addr}]{addr}:user is online",
            f"[{addr}]{addr}:online...",
            f"[{addr}]{addr}:hello",
        ]
    finally:
        server.stop()
