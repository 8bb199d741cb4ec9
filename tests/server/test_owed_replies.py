"""Replies the client asked for are owed to it, whatever their size (issue 25, item 1):
a page of history, the list of who is online and the messages kept for a login reach a
client that reads, at the pace it reads, and are never a reason to drop it; a kept
message leaves the mailbox only once it has been written to the client's socket. Real
TCP, one in-process server; the cluster's side is at the end, on a real redis-server.

Here the tests that need an in-process server on loopback; the others are in
cluster/test_owed_replies.py."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import anyio
import anyio.abc

from imkit.server import Server
from tests.support import TIMEOUT, LineClient, joined, run_server, split_addr
from tests.support.accounts import add, config
from tests.support.owed_replies import control_text, mail, waiting
from tests.support.web import hello, web_user

PASSWORD = "pw"
LOGIN_HELLO = {"type": "hello", "login": {"name": "victim", "password": PASSWORD}}


async def waiting_becomes(server: Server, account: str, count: int) -> None:
    with anyio.fail_after(TIMEOUT):
        while await waiting(server, account) != count:
            await anyio.sleep(0.05)


async def read_kept(client: LineClient, count: int) -> list[str]:
    """The texts of the next ``count`` private messages (JSON), each kept for the
    login; no bye comes meanwhile."""
    texts: list[str] = []
    while len(texts) < count:
        event = await client.json()
        assert event["type"] != "bye", event
        if event["type"] == "message" and event["to"] is not None:
            texts.append(event["text"])  # (JSON shows a kept message as any other)
    return texts


async def test_kept_mail_larger_than_the_queue_all_reaches_a_text_client(
    short_dir: Path,
) -> None:
    # The case: --max-queue 20000 and mail larger than it; each login ate
    # some of it and delivered none. Scaled down: 10 messages of 500 bytes, 4000 bytes.
    async with run_server(config(short_dir, max_queue=4000)) as server:
        address = server.addresses[0]
        await add(server, "alex", PASSWORD)
        texts = [f"{n} " + "x" * 500 for n in range(10)]
        await mail(address, "alex", texts)
        user = await joined(address)
        await user.send("login|alex|pw\n")
        lines = await user.lines(11)
        assert lines[0] == "you have logged in as alex\n"
        assert [line.rstrip("\n").rsplit(": ", 1)[-1] for line in lines[1:]] == texts
        assert all(line.startswith("past ") for line in lines[1:])
        await waiting_becomes(server, "alex", 0)
        await user.send("who\n")  # still connected, and answered
        assert "alex" in await user.line_matching("alex")


async def test_kept_control_characters_reach_a_json_client_in_order(short_dir: Path) -> None:
    # Messages of raw \x01 grow six times in JSON: 20 of 1,000 bytes are 120 KB there,
    # six times --max-queue. The login gets every one, in order, and stays.
    async with run_server(config(short_dir, max_queue=20000)) as server:
        address = server.addresses[0]
        await add(server, "victim", PASSWORD)
        texts = [control_text(n, 1000) for n in range(20)]
        await mail(address, "victim", texts)
        client = await json_login(address)
        assert await read_kept(client, 20) == texts
        await waiting_becomes(server, "victim", 0)
        assert (await client.request(type="ping"))["type"] == "pong"


async def json_login(address: str) -> LineClient:
    """A JSON client logged in to the account ``victim`` with its hello."""
    client = await LineClient.connect(address)
    await client.send(json.dumps(LOGIN_HELLO) + "\n")
    assert (await client.json_of_type("welcome"))["account"] == "victim"
    return client


def _unread_client(address: str) -> socket.socket:
    """A client socket with a small receive buffer, so that the server can write only
    a little of what it is owed while nobody reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(split_addr(address))
    return sock


async def test_kept_mail_leaves_the_mailbox_only_once_written(short_dir: Path) -> None:
    # 100 messages of 60,000 control characters are 36 MB in JSON, more than the
    # kernel's socket buffers hold (4 MB at most here). A login that never reads is
    # written part of it; then its connection is reset. Those written left the
    # mailbox, the rest are there for the next login: none lost, in order.
    async with run_server(config(short_dir, max_line=65536)) as server:
        address = server.addresses[0]
        await add(server, "victim", PASSWORD)
        texts = [control_text(n, 60_000) for n in range(100)]
        await mail(address, "victim", texts)
        sock = _unread_client(address)
        try:
            sock.sendall(json.dumps(LOGIN_HELLO).encode() + b"\n")
            # Until the server can write no more: the count of waiting ones settles.
            previous, settled = -1, 0
            with anyio.fail_after(TIMEOUT):
                while settled < 5:
                    now = await waiting(server, "victim")
                    settled = settled + 1 if now == previous else 0
                    previous = now
                    await anyio.sleep(0.1)
            assert 0 < previous < 100
            [member] = [m for m in server.hub.members if m.account == "victim"]
            assert member.outbox.owed > 0  # the rest is owed, queued, not dropped
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset: whatever the client had not read is gone with it
        with anyio.fail_after(TIMEOUT):
            while server.hub.members:
                await anyio.sleep(0.05)
        assert await waiting(server, "victim") == previous
        again = await json_login(address)
        assert await read_kept(again, previous) == texts[100 - previous :]
        await waiting_becomes(server, "victim", 0)


async def test_a_history_page_larger_than_the_queue_reaches_its_asker(short_dir: Path) -> None:
    # The web page case: public lines of control characters made every JSON
    # history request of more than a few a single line larger than --max-queue.
    async with run_server(config(short_dir, max_queue=20000)) as server:
        address = server.addresses[0]
        talker = await joined(address, "talker")
        for n in range(20):
            await talker.send(control_text(n, 2000) + "\n")
        await talker.lines(20)
        reader = await LineClient.connect(address)
        await reader.request(type="hello", name="reader")
        page = await reader.request(type="history", limit=20)
        assert page["type"] == "history", page
        assert [m["text"] for m in page["messages"]] == [control_text(n, 2000) for n in range(20)]
        # Again, and the other clients are still there and unaffected.
        again = await reader.request(type="history", limit=20)
        assert len(again["messages"]) == 20
        await talker.send("still here\n")
        assert (await reader.json_of_type("message"))["text"] == "still here"


async def test_the_web_page_s_first_history_page_does_not_drop_it(short_dir: Path) -> None:
    # The page asks for 50 after every welcome: with long lines of control characters
    # in history, every browser user was disconnected right after joining.
    async with run_server(config(short_dir, max_queue=20000, web="127.0.0.1:0")) as server:
        talker = await joined(server.addresses[0], "talker")
        for n in range(50):
            await talker.send(control_text(n, 1000) + "\n")
        await talker.lines(50)
        async with web_user(server.web_addresses[0]) as user:
            await hello(user, "browser")
            page = await user.request(type="history", limit=50, id="first")
            assert page["type"] == "history", page
            assert [m["text"] for m in page["messages"]] == [
                control_text(n, 1000) for n in range(50)
            ]
            assert (await user.request(type="ping", id="p")) == {"type": "pong", "id": "p"}


async def test_a_who_list_larger_than_the_queue_reaches_its_asker(short_dir: Path) -> None:
    async with run_server(config(short_dir, max_queue=2048)) as server:
        address = server.addresses[0]
        names = [f"{n:02d}" + "n" * 30 for n in range(40)]  # 40 names of 32 characters
        asker = await LineClient.connect(address)
        await asker.request(type="hello", name="asker")
        for name in names:
            client = await LineClient.connect(address)
            await client.send(f"rename|{name}\n")
            await client.line_matching("you have updated user name")
        reply = await asker.request(type="who")
        assert reply["type"] == "users", reply
        listed = [user["name"] for user in reply["users"]]
        assert set(names) <= set(listed)
        assert sum(len(json.dumps(user)) for user in reply["users"]) > 2048


async def test_a_client_asking_faster_than_it_reads_is_held_back_not_dropped(
    short_dir: Path,
) -> None:
    # 50 requests for a page of about 40 KB sent at once, by a client that reads
    # nothing meanwhile: its later requests wait for it to read (its owed replies stay
    # near one page, not 50), then it reads every reply, in order.
    async with run_server(config(short_dir, max_queue=20000)) as server:
        address = server.addresses[0]
        talker = await joined(address, "talker")
        for n in range(20):
            await talker.send(f"{n:02d} " + "y" * 2000 + "\n")
        await talker.lines(20)
        sock = _unread_client(address)
        try:
            sock.sendall(b'{"type":"hello","name":"greedy"}\n')
            requests = b"".join(
                json.dumps({"type": "history", "limit": 20, "id": n}).encode() + b"\n"
                for n in range(50)
            )
            sock.sendall(requests)
            await anyio.sleep(1)
            [member] = [m for m in server.hub.members if m.name == "greedy"]
            page = 20 * 2100
            assert member.outbox.owed <= member.outbox.reply_pace + page + 1000
            assert member.online
            sock.setblocking(False)
            stream = LineClient(await anyio.abc.SocketStream.from_socket(sock))
            ids: list[int] = []
            with anyio.fail_after(TIMEOUT * 3):
                while len(ids) < 50:
                    event = await stream.json()
                    assert event["type"] != "bye", event
                    if event["type"] == "history":
                        ids.append(event["id"])
            assert ids == list(range(50))
        finally:
            sock.close()
