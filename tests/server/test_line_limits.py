"""Robustness at the edges of a line, end to end over real TCP: request ids that cannot be
echoed, operator texts that must stay one line, and --max-line as a limit on the message
text in both wire modes.

Here the tests that need an in-process server on loopback; the others are in
behaviour/test_line_limits.py."""

from __future__ import annotations

import json
import logging

import anyio
import pytest

from imkit.client import admin as admin_client
from imkit.protocol import DEFAULT_MAX_LINE, json_line_limit, text_line_limit
from imkit.server import Server, ServerConfig
from tests.support import TIMEOUT, LineClient, joined, run_server

LIMIT = DEFAULT_MAX_LINE  # the server fixture's --max-line
FORGED = "[1.2.3.4:5]boss:send me your password"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# ----------------------------------------------------------- ids that cannot be echoed


async def test_a_lone_surrogate_in_an_id_is_a_bad_request(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    j = await LineClient.connect(server.addresses[0])
    await j.request(type="hello")
    await j.send(b'{"type":"ping","id":"\\ud800"}\n')
    error = await j.json_of_type("error")
    assert error["code"] == "bad_request" and "id" not in error  # it cannot be echoed
    assert "'id'" in error["message"]
    assert await j.request(type="ping", id="after") == {"type": "pong", "id": "after"}
    no_tracebacks(caplog)


async def test_a_lone_surrogate_in_a_hellos_id_on_a_password_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ServerConfig(port=0, idle_timeout=0, password="s3cret")
    async with run_server(config) as server:
        j = await LineClient.connect(server.addresses[0])
        await j.send(b'{"type":"hello","password":"s3cret","id":"\\ud800"}\n')
        error = await j.json()
        assert error["type"] == "error" and error["code"] == "unauthorized"
        assert "id" not in error
        assert (await j.json())["type"] == "bye"
        assert await j.eof()
    no_tracebacks(caplog)


# --------------------------------------------------------- operator texts stay one line


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        (f"bye\n{FORGED}", f"bye {FORGED}"),
        (f"bye\r\n{FORGED}", f"bye {FORGED}"),
        (f"bye\r{FORGED}", f"bye {FORGED}"),
        (f"bye\u2028{FORGED}", f"bye {FORGED}"),
        (f"bye\x1b[2K\r{FORGED}", f"bye [2K {FORGED}"),  # no escape sequence either
    ],
)
async def test_a_kick_reason_cannot_forge_a_line(server: Server, reason: str, shown: str) -> None:
    alex = await joined(server.addresses[0], "alex")
    assert server.admin_socket is not None
    request = {"type": "kick", "name": "alex", "reason": reason}
    assert (await admin_client.request(server.admin_socket.path, request))["type"] == "ok"
    assert await alex.line() == f"you were removed by an administrator: {shown}\n"
    assert await alex.eof()  # and nothing else: no second line


async def test_a_json_client_gets_the_same_one_line_reason(server: Server) -> None:
    bot = await LineClient.connect(server.addresses[0])
    await bot.request(type="hello", name="bot")
    server.hub.kick("bot", f"bye\n\n\t{FORGED}")
    bye = await bot.json_of_type("bye")
    assert bye == {
        "type": "bye",
        "reason": "kicked",
        "message": f"you were removed by an administrator: bye {FORGED}",
    }


# ------------------------------------------------- --max-line limits the message text


@pytest.mark.parametrize(
    ("text", "ensure_ascii"),
    [
        ('"' * LIMIT, False),  # every character escaped to 2 bytes
        ("\\" * LIMIT, True),
        ("é" * (LIMIT // 2), True),  # \u00e9: 6 bytes for 2
        ("😀" * (LIMIT // 4), True),  # a surrogate pair: 12 bytes for 4
        ("你" * (LIMIT // 3), True),  # 6 bytes for 3
    ],
)
async def test_any_escaping_of_a_max_line_text_fits_a_json_line(
    server: Server, text: str, ensure_ascii: bool
) -> None:
    assert len(text.encode()) <= LIMIT
    bob = await joined(server.addresses[0], "bob")
    j = await LineClient.connect(server.addresses[0])
    await j.request(type="hello", name="alex")
    request = {"type": "message", "to": "bob", "text": text, "id": "long"}
    line = json.dumps(request, ensure_ascii=ensure_ascii)
    assert len(line) > LIMIT
    await j.send(line + "\n")
    ok = await j.json_of_type("ok")
    assert ok["id"] == "long" and "msgid" in ok
    assert await bob.line_matching("say:") == f"alex say: {text}\n"


@pytest.mark.parametrize("name", ["bob", "\U00020000" * 32])  # the longest name: 32 × 4 bytes
async def test_a_private_text_line_may_carry_max_line_bytes_of_text(
    server: Server, name: str
) -> None:
    bob = await joined(server.addresses[0], name)
    alex = await joined(server.addresses[0], "alex")
    await alex.send(f"to|{name}|" + "y" * LIMIT + "\n")
    assert await bob.line_matching("say:") == "alex say: " + "y" * LIMIT + "\n"
    await alex.send(f"to|{name}|" + "y" * (LIMIT + 1) + "\nwho\n")
    assert await alex.line() == f"error: line too long (the limit is {LIMIT} bytes); discarded\n"
    assert await alex.line_matching("online...")  # the connection goes on
    assert await bob.silent()


async def buffered_reaches(server: Server, name: str, size: int) -> None:
    """Wait until the server holds ``size`` bytes of ``name``'s unfinished line."""
    with anyio.fail_after(TIMEOUT):
        while True:
            wires = [c.member.wire for c in server.connections if c.member.name == name]
            if wires and wires[0].buffered == size:
                return
            await anyio.sleep(0.01)


@pytest.mark.parametrize("mode", ["text", "json", "undecided"])
async def test_the_server_buffers_at_most_one_line_limit_plus_one(mode: str) -> None:
    max_line = 100
    async with run_server(ServerConfig(port=0, idle_timeout=0, max_line=max_line)) as server:
        client = await LineClient.connect(server.addresses[0])
        await client.line_matching("user is online")
        name, limit = client.addr, json_line_limit(max_line)  # the first line may be a hello
        if mode == "text":
            await client.send("rename|alex\n")
            await client.line_matching("you have updated")
            name, limit = "alex", text_line_limit(max_line)
        elif mode == "json":
            await client.request(type="hello", name="bot")
            name = "bot"
        # Held whole: one byte more than the limit is a "\r" that may still come.
        await client.send(b"q" * (limit + 1))
        await buffered_reaches(server, name, limit + 1)
        await client.send(b"q")  # now it is known to be too long: reported, not held
        error = await client.line_matching("line too long")
        assert f"the limit is {limit if mode == 'json' else max_line} bytes" in error
        await buffered_reaches(server, name, 0)
        await client.send(b"q" * 50_000 + b"\n")  # the rest is discarded unread
        if mode == "json":
            assert (await client.request(type="ping"))["type"] == "pong"
        else:
            await client.send("who\n")
            assert await client.line_matching("online...")
