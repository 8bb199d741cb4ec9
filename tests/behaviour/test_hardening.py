"""Hardening over real sockets: slow readers, floods, capacity, bad input, abrupt
disconnects, password and TLS. (Shutdown is in test_cli_serve.py and test_shutdown.py.)

Here the tests that run on one node and on two; the others are in
server/test_hardening.py, unit/test_hardening.py."""

from __future__ import annotations

from tests.behaviour.conftest import Chat
from tests.support import LineClient

# ---------------------------------------------------------------------------- TLS


async def test_long_json_line_rest_is_discarded(chat: Chat) -> None:
    j = await LineClient.connect(chat.address(0))
    await j.request(type="hello")
    await j.send(b'{"type":"message","text":"' + b"x" * 5000 + b'"}\n{"type":"ping","id":1}\n')
    assert (await j.json_of_type("error"))["code"] == "line_too_long"
    assert await j.json() == {"type": "pong", "id": 1}


async def test_a_password_offered_to_a_server_without_one_is_never_echoed(chat: Chat) -> None:
    client = await LineClient.connect(chat.address(0))
    await client.line()  # its join
    await client.send(b"pass|oops\nnext\n")
    assert await client.line() == f"[{client.addr}]{client.addr}:next\n"
