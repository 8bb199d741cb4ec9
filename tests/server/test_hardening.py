"""Hardening over real sockets: slow readers, floods, capacity, bad input, abrupt
disconnects, password and TLS. (Shutdown is in test_cli_serve.py and test_shutdown.py.)

Here the tests that need an in-process server on loopback; the others are in
behaviour/test_hardening.py, unit/test_hardening.py."""

from __future__ import annotations

import logging
import socket
import struct
import time

import anyio
import pytest

from imkit.client.library import connect
from imkit.errors import Disconnected, Unauthorized
from imkit.server import Server, ServerConfig
from tests.support import LineClient, joined, run_server, split_addr


def config(**overrides: object) -> ServerConfig:
    return ServerConfig(**{"port": 0, "idle_timeout": 0, **overrides})  # type: ignore[arg-type]


# ------------------------------------------------------------------- slow readers


async def test_many_stalled_readers_are_dropped_and_memory_stays_bounded() -> None:
    limit = 64 * 1024
    async with (
        run_server(config(rate=0, max_queue=limit, max_line=16384)) as server,
        anyio.create_task_group() as tg,
    ):
        stalled = []
        for _ in range(10):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(split_addr(server.addresses[0]))
            stalled.append(sock)  # connects and never reads
        talker = await joined(server.addresses[0], "talker")
        listener = await joined(server.addresses[0], "listener")
        await talker.line()
        tg.start_soon(talker.drain)
        body = "z" * 10000
        largest = 0
        with anyio.fail_after(60):
            for i in range(600):  # 6 MB to each: past every stalled socket's buffers
                await talker.send(f"{i} {body}\n")
                line = await listener.line()
                while "user offline" in line:  # a stalled one leaving
                    line = await listener.line()
                assert line == f"[{talker.addr}]talker:{i} {body}\n"
                largest = max(largest, *(len(c.outbox) for c in server.connections))
        assert largest <= limit  # no queue ever held more than --max-queue
        assert server.hub.stats.slow_consumers == 10
        assert [m.name for m in server.hub.members] == ["talker", "listener"]
        for sock in stalled:
            sock.close()
        tg.cancel_scope.cancel()


# ------------------------------------------------------------------------- floods


async def test_a_flooder_is_slowed_down_not_dropped_and_others_keep_their_speed() -> None:
    async with run_server(config(rate=5, burst=5)) as server:
        flooder = await joined(server.addresses[0], "flood")
        other = await joined(server.addresses[0], "other")
        await flooder.line()  # other's join
        start = time.monotonic()
        await flooder.send(b"".join(b"f%d\n" % i for i in range(25)))
        # while the flood is paced, the other client is answered at once, every time
        for _ in range(3):
            asked = time.monotonic()
            await other.send(b"who\n")
            await other.line_matching("flood:online")
            await other.line_matching("other:online")
            assert time.monotonic() - asked < 2.0
            await anyio.sleep(0.5)
        got = [(await flooder.line_matching(r":f\d+$")).rsplit(":", 1)[1] for _ in range(25)]
        assert got == [f"f{i}\n" for i in range(25)]  # all of it, in order
        assert time.monotonic() - start >= (25 - 5) / 5 * 0.9  # 4 s at 5 lines/s


async def test_rate_exempt_addresses_are_not_slowed() -> None:
    async with run_server(config(rate=5, burst=5, rate_exempt=("127.0.0.0/8",))) as server:
        client = await joined(server.addresses[0], "bench")
        start = time.monotonic()
        await client.send(b"".join(b"m%d\n" % i for i in range(200)))
        for i in range(200):
            assert await client.line() == f"[{client.addr}]bench:m{i}\n"
        assert time.monotonic() - start < 20  # at 5 lines/s it would take 39 s


# ----------------------------------------------------------------------- capacity


async def test_over_max_clients_gets_one_line_and_others_are_unaffected() -> None:
    async with run_server(config(max_clients=3)) as server:
        members = [await joined(server.addresses[0], f"u{i}") for i in range(3)]
        extra = await LineClient.connect(server.addresses[0])
        assert await extra.line() == "the server is full (3 clients)\n"
        assert await extra.eof()
        await members[0].send(b"still fine\n")
        for member in members:
            assert (await member.line_matching("still fine")).endswith("u0:still fine\n")
        assert server.hub.stats.refused_full == 1
        await members[2].aclose()
        with anyio.fail_after(10):
            while len(server.connections) >= 3:
                await anyio.sleep(0.05)
        newcomer = await joined(server.addresses[0], "late")  # a place is free again
        await newcomer.aclose()


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("nul\x00byte", "control"),
        ("esc\x1b[31m", "control"),
        ("tab\there", "spaces"),
        ("n" * 33, "at most 32"),
        ("a:b", "':'"),
    ],
)
async def test_bad_names_in_both_modes(server: Server, name: str, why: str) -> None:
    text = await joined(server.addresses[0])
    await text.send(f"rename|{name}\n".encode())
    reply = await text.line()
    assert reply.startswith(f"error: invalid name {name!r}") and why in reply
    await text.send(b"who\n")  # the connection goes on
    assert (await text.line()).endswith(":online...\n")

    j = await LineClient.connect(server.addresses[0])
    await j.request(type="hello")
    error = await j.request(type="rename", name=name)
    assert error["code"] == "invalid_name" and why in error["message"]
    assert (await j.request(type="ping"))["type"] == "pong"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"{oops", "malformed JSON"),
        (b'{"type":"teleport"}', "unknown request type 'teleport'"),
        (b'{"type":"message","text":["not","a","string"]}', "'text' must be a string"),
        (b'{"type":"rename","name":42}', "'name' must be a string"),
        (b"[1,2,3]", "must be a JSON object"),
        (b'{"type":"who","id":{"nested":true}}', "'id'"),
        (b"\xff\xfe not utf-8", "not valid UTF-8"),
    ],
)
async def test_bad_json_mode_input_gets_an_error_and_the_connection_goes_on(
    server: Server, line: bytes, words: str
) -> None:
    j = await LineClient.connect(server.addresses[0])
    await j.request(type="hello")
    await j.send(line + b"\n")
    error = await j.json_of_type("error")
    assert words in error["message"]
    assert "\n" not in error["message"]
    assert (await j.request(type="ping", id="after"))["type"] == "pong"


async def who_names(server: Server) -> list[str]:
    return [m.name for m in server.hub.members]


async def wait_until_alone(server: Server, name: str) -> None:
    with anyio.move_on_after(10):
        while await who_names(server) != [name]:
            await anyio.sleep(0.05)
    assert await who_names(server) == [name]


async def test_abrupt_disconnects_leave_no_ghosts_and_no_tracebacks(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    watcher = await joined(server.addresses[0], "watcher")
    host, port = split_addr(server.addresses[0])

    # reset: close with SO_LINGER 0 sends RST
    reset = socket.create_connection((host, port))
    reset.sendall(b"rename|reset\npartial line")
    await anyio.sleep(0.2)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()

    # half-close: the client ends its side but keeps reading
    half = socket.create_connection((host, port))
    half.sendall(b"rename|half\n")
    half.shutdown(socket.SHUT_WR)

    # vanish mid-write: a client that stopped reading disappears while the server
    # is writing a lot to it
    vanisher = socket.socket()
    vanisher.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    vanisher.connect((host, port))
    vanisher.sendall(b"rename|vanisher\n")
    with anyio.fail_after(10):
        while server.hub.find("vanisher") is None:
            await anyio.sleep(0.05)
    for _ in range(40):
        await watcher.send(b"y" * 3000 + b"\n")
    vanisher.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    vanisher.close()

    await wait_until_alone(server, "watcher")
    half.close()
    await watcher.send(b"who\n")
    assert await watcher.line_matching(r"online\.\.\.$") == f"[{watcher.addr}]watcher:online...\n"
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()


# ----------------------------------------------------------------------- password


async def test_password_in_text_mode() -> None:
    async with run_server(config(password="s3cret")) as server:
        member = await LineClient.connect(server.addresses[0])
        await member.send(b"pass|s3cret\n")
        assert await member.line() == f"[{member.addr}]{member.addr}:user is online\n"
        await member.send(b"rename|in\n")
        assert await member.line() == "you have updated user name: in\n"

        wrong = await LineClient.connect(server.addresses[0])
        await wrong.send(b"pass|guess\nhello\n")
        assert await wrong.line() == "wrong password\n"
        assert await wrong.eof()

        bare = await LineClient.connect(server.addresses[0])
        await bare.send(b"hello without a password\n")
        assert await bare.line() == "a password is required\n"
        assert await bare.eof()

        assert await member.silent(0.3)  # nobody saw the refused ones come or go
        assert [m.name for m in server.hub.members] == ["in"]
        assert server.hub.stats.refused_unauthorized == 2


async def test_until_authenticated_a_client_receives_nothing_and_is_not_listed() -> None:
    async with run_server(config(password="pw", auth_timeout=1.5)) as server:
        waiting = await LineClient.connect(server.addresses[0])
        member = await LineClient.connect(server.addresses[0])
        await member.send(b"pass|pw\nrename|m\nhello all\nwho\n")
        await member.line_matching(":hello all")
        assert await member.line() == f"[{member.addr}]m:online...\n"  # only itself
        # the one still waiting saw nothing, and is closed after the timeout
        assert await waiting.line() == "no password received within 1.5 seconds\n"
        assert await waiting.eof()


async def test_password_in_json_mode_and_through_the_client_library() -> None:
    async with run_server(config(password="pw")) as server:
        host, port = split_addr(server.addresses[0])
        async with connect(host, port, password="pw", name="lib") as client:
            assert client.name == "lib"
        with pytest.raises(Unauthorized, match="wrong password"):
            async with connect(host, port, password="nope"):
                pass
        raw = await LineClient.connect(server.addresses[0])
        reply = await raw.request(type="hello", id="h")
        assert reply == {
            "type": "error",
            "id": "h",
            "code": "unauthorized",
            "message": "a password is required",
        }
        assert await raw.json_of_type("bye") == {
            "type": "bye",
            "reason": "unauthorized",
            "message": "a password is required",
        }


# ---------------------------------------------------------------------------- TLS


async def test_tls_with_the_client_library(tls_files: dict[str, str]) -> None:
    tls = config(tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    async with run_server(tls) as server:
        host, port = split_addr(server.addresses[0])
        async with (
            connect("localhost", port, cafile=tls_files["ca"], name="a") as a,
            connect("localhost", port, cafile=tls_files["ca"], name="b") as b,
        ):
            events = b.events()
            await a.send("over TLS", to="b")
            event = await anext(events)
            while getattr(event, "text", None) != "over TLS":
                event = await anext(events)
        # a plain client cannot talk to it, and does not hurt it
        plain = await LineClient.connect(server.addresses[0])
        await plain.send(b"this is not a TLS client hello, as netcat would send it\n")
        assert await plain.eof()
        async with connect("localhost", port, cafile=tls_files["ca"]) as c:
            assert len(await c.who()) == 1
        assert host == "127.0.0.1"


async def test_tls_certificate_errors_are_one_line(tls_files: dict[str, str]) -> None:
    tls = config(tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    async with run_server(tls) as server:
        _, port = split_addr(server.addresses[0])
        with pytest.raises(Exception) as raised:
            async with connect("localhost", port, tls=True):  # the system CAs do not know it
                pass
        message = str(raised.value)
        assert message.startswith(f"TLS certificate of localhost:{port} not trusted")
        assert "\n" not in message


async def test_kicked_client_library_sees_disconnected() -> None:
    async with run_server(config()) as server:
        host, port = split_addr(server.addresses[0])
        async with connect(host, port, name="victim") as client:
            server.hub.kick("victim", "testing")
            with pytest.raises(Disconnected) as raised:
                await client.who()
            assert raised.value.reason == "kicked"


async def test_shutdown_closes_clients_still_proving_their_password() -> None:
    async with run_server(config(password="pw", auth_timeout=30)) as server:
        waiting = await LineClient.connect(server.addresses[0])
        with anyio.fail_after(10):
            while not server.connections:
                await anyio.sleep(0.01)
        started = time.monotonic()
        server.stop()
        assert await waiting.eof()  # closed without a word, well before its 30 s
        assert time.monotonic() - started < 5
