"""The server over real loopback TCP: every row of the seed's protocol table, JSON mode,
and each bug of the seed that imkit must not have.

Here the tests that run on one node and on two; the others are in server/test_server.py."""

from __future__ import annotations

import anyio

from tests.behaviour.conftest import Chat
from tests.support import LineClient, joined


async def test_connect_announces_to_everyone_including_the_newcomer(chat: Chat) -> None:
    a = await joined(chat.address(0))
    b = await LineClient.connect(chat.address(1))
    assert await b.line() == f"[{b.addr}]{b.addr}:user is online\n"
    assert await a.line() == f"[{b.addr}]{b.addr}:user is online\n"


async def test_public_message_reaches_everyone_sender_included(chat: Chat) -> None:
    a, b = await joined(chat.address(0), "alex"), await joined(chat.address(1))
    await a.line()  # b's join
    await a.send(b"hello there\n")
    assert await a.line() == f"[{a.addr}]alex:hello there\n"
    assert await b.line() == f"[{a.addr}]alex:hello there\n"


async def test_who_lists_users_in_order_of_arrival(chat: Chat) -> None:
    a = await joined(chat.address(0), "alex")
    b = await joined(chat.address(1), "bob")
    await b.send(b"who\n")
    assert await b.lines(2) == [f"[{a.addr}]alex:online...\n", f"[{b.addr}]bob:online...\n"]


async def test_rename_and_taken_name(chat: Chat) -> None:
    await joined(chat.address(0), "alex")
    b = await joined(chat.address(1))
    await b.send(b"rename|ALEX\n")
    assert await b.line() == "ALEX has existed...\n"
    await b.send(b"rename|bad name\n")
    assert (await b.line()).startswith("error: invalid name 'bad name'")
    await b.send(b"rename|bob\n")
    assert await b.line() == "you have updated user name: bob\n"


async def test_private_message_rows(chat: Chat) -> None:
    a = await joined(chat.address(0), "alex")
    b = await joined(chat.address(1), "bob")
    await a.line()  # bob's join
    await a.send(b"to|bob|hi | there\n")
    assert await b.line() == "alex say: hi | there\n"
    assert await a.silent()  # nothing to the sender on success
    await a.send(b"to|carol|hi\n")
    assert await a.line() == "username not exist\n"
    await a.send(b"to|bob|\n")
    assert await a.line() == "invalid message\n"
    await a.send(b"to|bob\n")  # crashed the seed's whole server (index out of range)
    assert await a.line() == "invalid message\n"
    await b.send(b"to|ALEX|back\n")  # names are matched without regard to case
    assert await a.line() == "bob say: back\n"


async def test_disconnect_tells_everyone_else(chat: Chat) -> None:
    a = await joined(chat.address(0), "alex")
    b = await joined(chat.address(1), "bob")
    await a.line()
    await b.aclose()
    assert await a.line() == f"[{b.addr}]bob:user offline\n"
    await a.send(b"who\n")
    assert await a.line() == f"[{a.addr}]alex:online...\n"
    assert await a.silent()


async def test_a_line_split_across_writes_is_one_message(chat: Chat) -> None:
    a = await joined(chat.address(0), "alex")
    for piece in (b"hel", b"lo wo", b"rld\r", b"\n"):
        await a.send(piece)
        await anyio.sleep(0.05)
    assert await a.line() == f"[{a.addr}]alex:hello world\n"


async def test_concurrent_renames_to_one_name_have_one_winner(chat: Chat) -> None:
    clients = [await joined(chat.address(k)) for k in range(30)]
    for client in clients:
        await client.send(b"rename|prize\n")
    results = []
    for client in clients:
        results.append(await client.line_matching("prize"))
    assert results.count("you have updated user name: prize\n") == 1
    assert results.count("prize has existed...\n") == 29


async def test_json_mode_over_tcp(chat: Chat) -> None:
    text = await joined(chat.address(0), "tee")
    j = await LineClient.connect(chat.address(1))
    welcome = await j.request(type="hello", v=1, name="jay", id=1)
    assert welcome == {
        "type": "welcome",
        "id": 1,
        "name": "jay",
        "addr": j.addr,
        "server": welcome["server"],
        "account": None,
        "features": chat.features,
        "v": 1,
    }
    assert welcome["server"].startswith("imkit/")
    assert await j.request(type="ping", id="p") == {"type": "pong", "id": "p"}
    users = await j.request(type="who", id=2)
    assert users["users"] == [
        {"name": "tee", "addr": text.addr, "account": None},
        {"name": "jay", "addr": j.addr, "account": None},
    ]
    ok = await j.request(type="message", text="hi all", id=3)
    assert ok == {"type": "ok", "id": 3, "msgid": ok["msgid"]} and len(ok["msgid"]) == 16
    assert await text.line_matching("hi all") == f"[{j.addr}]jay:hi all\n"
    private_ok = await j.request(type="message", to="TEE", text="psst", id=4)
    assert private_ok == {"type": "ok", "id": 4, "msgid": private_ok["msgid"]}
    assert private_ok["msgid"] > ok["msgid"]
    assert await text.line() == "jay say: psst\n"
    reply = await j.request(type="message", to="zed", text="x", id=5)
    assert reply["type"] == "error" and reply["code"] == "no_such_user"
    reply = await j.request(type="rename", name="tee", id=6)
    assert reply["code"] == "name_taken"
    await text.send(b"hello json\n")
    event = await j.json_of_type("message")
    assert event["from"] == "tee" and event["to"] is None and event["text"] == "hello json"
    assert event["time"].endswith("Z")
    await j.send(b"{oops\n")
    error = await j.json_of_type("error")
    assert error["code"] == "bad_request"
    await text.aclose()
    presence = await j.json_of_type("presence")
    assert presence == {"type": "presence", "name": "tee", "addr": text.addr, "status": "offline"}


async def test_unicode_text_passes_intact(chat: Chat) -> None:
    a = await joined(chat.address(0), "张伟")
    await a.send("你好，世界 with spaces and ümlauts\n".encode())
    assert await a.line() == f"[{a.addr}]张伟:你好，世界 with spaces and ümlauts\n"
