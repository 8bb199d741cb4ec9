"""Robustness at the edges of a line, end to end over real TCP: request ids that cannot be
echoed, operator texts that must stay one line, and --max-line as a limit on the message
text in both wire modes.

Here the tests that run on one node and on two; the others are in
server/test_line_limits.py."""

from __future__ import annotations

import pytest

from imkit.client.library import connect
from imkit.errors import ServerError
from imkit.protocol import DEFAULT_MAX_LINE, json_line_limit
from tests.behaviour.conftest import Chat
from tests.support import LineClient, joined

LIMIT = DEFAULT_MAX_LINE  # the server fixture's --max-line


# ------------------------------------------------- --max-line limits the message text


async def test_a_text_of_max_line_bytes_is_sent_by_the_client_library(chat: Chat) -> None:
    bob = await joined(chat.address(0), "bob")
    async with connect(*chat.hostport(1), name="alex") as alex:
        await alex.send("x" * LIMIT, to="bob")
        assert await bob.line_matching("say:") == "alex say: " + "x" * LIMIT + "\n"
        with pytest.raises(ServerError) as refused:
            await alex.send("x" * (LIMIT + 1), to="bob")
        assert refused.value.code == "line_too_long"
        assert str(refused.value) == f"line too long: the message text is longer than {LIMIT} bytes"
        await alex.send("still here", to="bob")
        assert await bob.line_matching("say:") == "alex say: still here\n"


async def test_a_json_text_over_max_line_is_refused_with_its_id(chat: Chat) -> None:
    j = await LineClient.connect(chat.address(0))
    await j.request(type="hello")
    reply = await j.request(type="message", text="é" * (LIMIT // 2) + "x", id=7)
    assert reply == {
        "type": "error",
        "id": 7,
        "code": "line_too_long",
        "message": f"line too long: the message text is longer than {LIMIT} bytes",
    }


async def test_a_json_line_over_its_limit_is_discarded_up_to_the_newline(chat: Chat) -> None:
    limit = json_line_limit(LIMIT)
    j = await LineClient.connect(chat.address(0))
    await j.request(type="hello")
    await j.send(b'{"type":"message","text":"' + b"x" * limit)
    await j.send(b'"}\n{"type":"ping","id":1}\n')
    error = await j.json_of_type("error")
    assert error == {
        "type": "error",
        "code": "line_too_long",
        "message": f"line too long (the limit is {limit} bytes); discarded",
    }
    assert await j.json() == {"type": "pong", "id": 1}


async def test_a_public_text_line_is_limited_to_max_line_bytes(chat: Chat) -> None:
    alex = await joined(chat.address(0), "alex")
    await alex.send("z" * LIMIT + "\n")
    assert await alex.line() == f"[{alex.addr}]alex:" + "z" * LIMIT + "\n"
    await alex.send("z" * (LIMIT + 1) + "\n" + "rename|" + "z" * LIMIT + "\n")
    assert await alex.lines(2) == [
        f"error: line too long (the limit is {LIMIT} bytes); discarded\n",
        f"error: line too long (the limit is {LIMIT} bytes); discarded\n",
    ]


async def test_a_first_line_may_be_a_long_private_message(chat: Chat) -> None:
    bob = await joined(chat.address(0), "bob")
    anon = await LineClient.connect(chat.address(1))
    await anon.send("to|bob|" + "w" * LIMIT + "\n")
    assert await bob.line_matching("say:") == f"{anon.addr} say: " + "w" * LIMIT + "\n"
