"""A client that half-closes (sends its lines, then ends its writing side, as
``printf 'who\\nhello\\n' | nc -N HOST PORT`` does) still gets every reply it is owed,
then EOF: on one node, and on a cluster node, whose replies come back through Redis
after the client's end of stream (issue 26, item 7).

Here the tests that run imkit subprocesses; the others are in
cluster/test_half_close.py."""

from __future__ import annotations

from tests.support import half_closed, start_server_process


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
