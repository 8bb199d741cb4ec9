"""The administrator's rooms (docs/rooms.md, "What the administrator can do") through the
admin socket's handlers, over real TCP clients: rooms, room_add, room_remove, room_op,
room_deop, room_set, and who, kick, history, ban and unban with a room.

Every test takes ``admin_chat``: one in-process server, or two that are one chat
through a real redis-server (the k-th client on node k mod 2, the admin on the first).
The tests ask the chat (``chat.admin``) and connect clients (``chat.address(k)``) only
through it (each exchange waits for the lines it names, never for silence after a
sleep)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from imkit.server import Server
from tests.support import LineClient, ask, joined, json_client, run_server
from tests.support.accounts import config as accounts_config
from tests.support.accounts import json_hello
from tests.support.cluster import RedisServer
from tests.support.metrics import Scraper, value

PASSWORD = "secret"


class AdminChat:
    """A running chat (one node or two) with accounts, asked as its administrator."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    def address(self, k: int = 0) -> str:
        return self.servers[k % len(self.servers)].addresses[0]

    async def admin(self, **request: Any) -> dict[str, Any]:
        """An admin request, on the first node (every node answers for the chat)."""
        return await ask(self.servers[0], **request)

    async def ok(self, **request: Any) -> dict[str, Any]:
        reply = await self.admin(**request)
        assert reply["type"] != "error", reply
        return reply

    async def error(self, **request: Any) -> str:
        reply = await self.admin(**request)
        assert reply["type"] == "error", reply
        return str(reply["code"])

    async def account(self, name: str) -> None:
        await self.ok(type="account_add", name=name, password=PASSWORD)

    async def logged_in(self, k: int, name: str) -> LineClient:
        """A JSON client on node k, logged in to the account ``name``."""
        client, welcome = await json_hello(
            self.address(k), login={"name": name, "password": PASSWORD}
        )
        assert welcome["type"] == "welcome", welcome
        return client


@pytest.fixture(params=["one node", "two nodes"])
async def admin_chat(request: pytest.FixtureRequest, short_dir: Path) -> AsyncIterator[AdminChat]:
    async with AsyncExitStack() as stack:
        if request.param == "one node":
            configs = [accounts_config(short_dir)]
        else:  # one chat through a real redis-server; each node its own admin socket
            redis: RedisServer = request.getfixturevalue("redis_server")
            name = f"a{uuid.uuid4().hex[:10]}"
            configs = [
                accounts_config(
                    short_dir,
                    admin_socket=str(short_dir / f"a{k}.sock"),
                    cluster=redis.url,
                    cluster_name=name,
                )
                for k in range(2)
            ]
        servers = [await stack.enter_async_context(run_server(c)) for c in configs]
        yield AdminChat(servers)


@pytest.fixture
async def admin_only_chat(short_dir: Path) -> AsyncIterator[AdminChat]:
    """``--room-creation admin``: only room_add makes rooms."""
    config = accounts_config(short_dir, room_creation="admin")
    async with run_server(config) as server:
        yield AdminChat([server])


async def _join(client: LineClient, room: str, **fields: Any) -> dict[str, Any]:
    return await client.request(type="join", room=room, **fields)


async def _event(client: LineClient, kind: str, room: str) -> dict[str, Any]:
    """The next event of type ``kind`` about ``room`` (others, presence, are skipped)."""
    while True:
        event = await client.json_of_type(kind)
        if event.get("room") == room:
            return event


# ------------------------------------------------------------------ listing


async def test_rooms_lists_every_room_secret_ones_too(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    bob = await json_client(admin_chat.address(1), "bob")
    assert (await _join(alex, "#Ops"))["type"] == "joined"
    assert (await alex.request(type="mode", room="#ops", changes="+sk", args=["pw"]))["type"] == (
        "ok"
    )
    assert (await _join(bob, "#builds"))["type"] == "joined"
    rooms = (await admin_chat.ok(type="rooms"))["rooms"]
    assert [r["room"] for r in rooms] == ["#builds", "#Ops"]  # by key; the lobby is not one
    ops = rooms[1]
    assert ops["members"] == 1 and ops["secret"] is True and ops["registered"] is False
    assert (ops["modes"], ops["args"]) == ("+nstk", ["pw"])  # the admin sees the key
    # bob, not a member, is not shown the secret room
    listed = await bob.request(type="rooms")
    assert [r["room"] for r in listed["rooms"]] == ["#lobby", "#builds"]


# ------------------------------------------------------------- registering


async def test_room_add_registers_a_room_with_its_settings(admin_chat: AdminChat) -> None:
    reply = await admin_chat.ok(
        type="room_add", room="#Builds", topic="nightly builds", moderated=True, secret=True
    )
    assert reply == {"type": "ok", "room": "#Builds", "members": 0, "modes": "+mnst"}
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert row["registered"] is True and row["topic"] == "nightly builds"
    assert await admin_chat.error(type="room_add", room="#builds") == "room_exists"
    alex = await json_client(admin_chat.address(0), "alex")
    joined_reply = await _join(alex, "#BUILDS")
    assert joined_reply["room"] == "#Builds" and joined_reply["topic"] == "nightly builds"
    assert joined_reply["operator"] is False  # a registered room's operators are accounts
    # the last member leaves: a registered room stays
    assert (await alex.request(type="part", room="#builds"))["type"] == "ok"
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert (row["room"], row["members"]) == ("#Builds", 0)


async def test_room_add_keeps_an_existing_room_and_its_members(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    bob = await json_client(admin_chat.address(1), "bob")
    await _join(alex, "#dev")
    await _join(bob, "#dev")
    await admin_chat.ok(type="room_add", room="#dev", topic="the dev room", invite_only=True)
    topic = await _event(bob, "topic", "#dev")
    assert (topic["topic"], topic["by"]) == ("the dev room", "the administrator")
    mode = await _event(bob, "mode", "#dev")
    assert (mode["changes"], mode["by"]) == ("+i", "the administrator")
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert (row["members"], row["registered"], row["modes"]) == (2, True, "+int")
    # both leave: the room stays
    await alex.request(type="part", room="#dev")
    await bob.request(type="part", room="#dev")
    assert [r["room"] for r in (await admin_chat.ok(type="rooms"))["rooms"]] == ["#dev"]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"type": "room_add", "room": "builds"}, "bad_room_name"),
        ({"type": "room_add", "room": "#a b"}, "bad_room_name"),
        ({"type": "room_add", "room": "#lobby"}, "bad_request"),
        ({"type": "room_add"}, "bad_request"),
        ({"type": "room_add", "room": "#x", "secret": "yes"}, "bad_request"),
        ({"type": "room_add", "room": "#x", "topic": 3}, "bad_request"),
        ({"type": "room_remove", "room": "#nowhere"}, "no_such_room"),
        ({"type": "room_set", "room": "#nowhere", "topic": "t"}, "no_such_room"),
        ({"type": "room_set", "room": "#x", "limit": 0}, "bad_request"),
        ({"type": "room_set", "room": "#x", "key": "a b"}, "bad_request"),
        ({"type": "who", "room": "#nowhere"}, "no_such_room"),
        ({"type": "kick", "room": "#nowhere", "name": "sam"}, "no_such_room"),
        ({"type": "ban", "room": "#nowhere", "target": "sam"}, "no_such_room"),
        ({"type": "ban", "room": "#x", "target": "a|b"}, "bad_request"),
        ({"type": "ban", "room": "#x", "target": "sam", "for": 60}, "bad_request"),
        ({"type": "room_op", "room": "#nowhere", "account": "nobody"}, "no_such_account"),
        ({"type": "history", "room": "nohash"}, "bad_room_name"),
    ],
)
async def test_bad_room_requests_get_their_codes(
    admin_chat: AdminChat, request_: dict[str, Any], code: str
) -> None:
    assert await admin_chat.error(**request_) == code


# ---------------------------------------------------------------- operators


async def test_room_op_makes_an_account_operator_now_and_when_it_joins(
    admin_chat: AdminChat,
) -> None:
    await admin_chat.account("alex")
    await admin_chat.account("sam")
    assert await admin_chat.error(type="room_op", room="#ops", account="alex") == "no_such_room"
    alex = await admin_chat.logged_in(0, "alex")
    await _join(alex, "#ops")  # made by alex's join: not registered
    assert await admin_chat.error(type="room_op", room="#ops", account="sam") == "not_registered"
    await admin_chat.ok(type="room_add", room="#ops")
    sam = await admin_chat.logged_in(1, "sam")
    assert (await _join(sam, "#ops"))["operator"] is False
    reply = await admin_chat.ok(type="room_op", room="#OPS", account="SAM")
    assert reply == {"type": "ok", "room": "#ops", "account": "sam", "operator": True}
    mode = await _event(alex, "mode", "#ops")
    assert (mode["changes"], mode["args"], mode["by"]) == ("+o", ["sam"], "the administrator")
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert row["operators"] == ["sam"]
    # sam leaves and comes back: an operator again, from its account
    await sam.request(type="part", room="#ops")
    assert (await _join(sam, "#ops"))["operator"] is True
    await admin_chat.ok(type="room_deop", room="#ops", account="sam")
    mode = await _event(sam, "mode", "#ops")
    assert (mode["changes"], mode["args"]) == ("-o", ["sam"])
    assert await admin_chat.error(type="room_deop", room="#ops", account="sam") == (
        "not_room_operator"
    )
    who = await admin_chat.ok(type="who", room="#ops")
    assert [(u["name"], u["operator"]) for u in who["users"]] == [("alex", True), ("sam", False)]


# ----------------------------------------------------------------- settings


async def test_room_set_changes_topic_and_settings_and_tells_the_room(
    admin_chat: AdminChat,
) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    await _join(alex, "#dev")
    reply = await admin_chat.ok(
        type="room_set", room="#dev", topic="ship it", secret=True, key="k3y", limit=5
    )
    assert (reply["changes"], reply["args"], reply["topic"]) == ("+skl", ["k3y", "5"], "ship it")
    assert (await _event(alex, "topic", "#dev"))["by"] == "the administrator"
    mode = await _event(alex, "mode", "#dev")
    assert (mode["changes"], mode["args"]) == ("+skl", ["k3y", "5"])
    bob = await json_client(admin_chat.address(1), "bob")
    assert (await _join(bob, "#dev"))["code"] == "bad_key"
    assert (await _join(bob, "#dev", key="k3y"))["type"] == "joined"
    reply = await admin_chat.ok(
        type="room_set", room="#dev", topic="", secret=False, key=None, limit=None
    )
    assert (reply["changes"], reply["topic"], reply["modes"]) == ("-skl", None, "+nt")
    # nothing changes: nobody is told
    reply = await admin_chat.ok(type="room_set", room="#dev", secret=False)
    assert reply["changes"] == ""


# ------------------------------------------------------- who, kick, history


async def test_kick_from_a_room_keeps_the_user_online(admin_chat: AdminChat) -> None:
    alex = await joined(admin_chat.address(0), "alex")
    sam = await joined(admin_chat.address(1), "sam")
    for client in (alex, sam):
        await client.send("join|#dev\n")
        await client.line_matching(r"^#dev \* you have joined #dev$")
    assert await admin_chat.error(type="kick", room="#dev", name="nobody") == "no_such_user"
    reply = await admin_chat.ok(type="kick", room="#dev", name="SAM", reason="flooding")
    assert reply == {"type": "ok", "name": "sam", "room": "#dev"}
    expected = "#dev * sam was kicked by the administrator: flooding\n"
    assert await sam.line_matching(r"^#dev \* sam was kicked") == expected
    assert await alex.line_matching(r"^#dev \* sam was kicked") == expected
    assert await admin_chat.error(type="kick", room="#dev", name="sam") == "not_in_room"
    # still online, in the lobby
    await sam.send("still here\n")
    assert await alex.line_matching("still here") == f"[{sam.addr}]sam:still here\n"
    who = await admin_chat.ok(type="who", room="#dev")
    assert [u["name"] for u in who["users"]] == ["alex"]
    assert [u["name"] for u in (await admin_chat.ok(type="who"))["users"]] == ["alex", "sam"]


async def test_history_of_a_room(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    await _join(alex, "#dev")
    assert (await alex.request(type="message", room="#dev", text="in the room"))["type"] == "ok"
    assert (await alex.request(type="message", text="in the lobby"))["type"] == "ok"
    page = await admin_chat.ok(type="history", room="#DEV", limit=10)
    assert [m["text"] for m in page["messages"]] == ["in the room"]
    assert page["room"] == "#DEV"
    lobby = await admin_chat.ok(type="history", room="#lobby")
    assert [m["text"] for m in lobby["messages"]] == ["in the lobby"] and "room" not in lobby


# --------------------------------------------------------------------- bans


async def test_a_room_ban_keeps_a_user_out_until_lifted(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    sam = await json_client(admin_chat.address(1), "sam")
    await _join(alex, "#dev")
    await _join(sam, "#dev")
    reply = await admin_chat.ok(type="ban", room="#dev", target="SAM")
    assert reply == {"type": "ok", "room": "#dev", "mask": "SAM", "matching": ["sam"]}
    mode = await _event(alex, "mode", "#dev")
    assert (mode["changes"], mode["args"], mode["by"]) == ("+b", ["SAM"], "the administrator")
    await admin_chat.ok(type="kick", room="#dev", name="sam")
    refused = await _join(sam, "#dev")
    assert (refused["type"], refused["code"]) == ("error", "banned_from_room")
    ip = sam.addr.rsplit(":", 1)[0]
    await admin_chat.ok(type="ban", room="#dev", target=f"{ip}/32")
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert row["bans"] == ["SAM", f"{ip}/32"]
    await admin_chat.ok(type="unban", room="#dev", target="SAM")
    assert (await _join(sam, "#dev"))["code"] == "banned_from_room"  # the address still is
    await admin_chat.ok(type="unban", room="#dev", target=f"{ip}/32")
    assert await admin_chat.error(type="unban", room="#dev", target="sam") == "no_such_ban"
    assert (await _join(sam, "#dev"))["type"] == "joined"


async def test_rooms_lists_the_exceptions_an_operator_set(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    await _join(alex, "#dev")
    reply = await alex.request(type="mode", room="#dev", changes="+eI", args=["sa*", "kim"])
    assert reply["type"] == "ok"
    [row] = (await admin_chat.ok(type="rooms"))["rooms"]
    assert (row["bans"], row["exceptions"], row["invite_exceptions"]) == ([], ["sa*"], ["kim"])


# ------------------------------------------------------------------ removing


async def test_room_remove_takes_every_member_out(admin_chat: AdminChat) -> None:
    await admin_chat.account("alex")
    alex = await admin_chat.logged_in(0, "alex")
    bob = await joined(admin_chat.address(1), "bob")
    await admin_chat.ok(type="room_add", room="#dev", topic="t")
    await _join(alex, "#dev")
    await bob.send("join|#dev\n")
    await bob.line_matching(r"^#dev \* you have joined #dev$")
    reply = await admin_chat.ok(type="room_remove", room="#Dev")
    assert reply == {"type": "ok", "room": "#dev", "registered": True, "removed": 2}
    kicked = await _event(alex, "kick", "#dev")
    assert (kicked["name"], kicked["by"]) == ("alex", "the administrator")
    assert kicked["reason"] == "the room was removed"
    line = await bob.line_matching(r"^#dev \* bob was kicked")
    assert line == "#dev * bob was kicked by the administrator: the room was removed\n"
    assert (await admin_chat.ok(type="rooms"))["rooms"] == []
    # alex's account is not put back in it at its next login
    await alex.aclose()
    again = await admin_chat.logged_in(0, "alex")
    assert (await again.request(type="rooms"))["rooms"] == [
        {"room": "#lobby", "members": 2, "topic": None}
    ]


async def test_only_room_add_makes_rooms_with_room_creation_admin(
    admin_only_chat: AdminChat,
) -> None:
    alex = await json_client(admin_only_chat.address(0), "alex")
    refused = await _join(alex, "#dev")
    assert (refused["type"], refused["code"]) == ("error", "no_such_room")
    await admin_only_chat.ok(type="room_add", room="#dev")
    assert (await _join(alex, "#dev"))["type"] == "joined"


# -------------------------------------------------------------------- stats


async def test_stats_count_rooms_members_and_messages(admin_chat: AdminChat) -> None:
    alex = await json_client(admin_chat.address(0), "alex")
    await admin_chat.ok(type="room_add", room="#empty")
    await _join(alex, "#a")
    await _join(alex, "#b")
    await alex.request(type="message", room="#a", text="one")
    await alex.request(type="message", text="lobby")
    stats = await admin_chat.ok(type="stats")
    if len(admin_chat.servers) == 1:
        assert (stats["rooms"], stats["room_members"], stats["room_messages"]) == (3, 2, 1)
    else:  # a node counts the rooms with members here; the cluster's section, every room
        assert (stats["rooms"], stats["room_members"], stats["room_messages"]) == (2, 2, 1)
        assert stats["cluster"]["rooms"] == 3
    assert stats["messages_received"] == 2


async def test_metrics_count_rooms_members_and_room_messages(short_dir: Path) -> None:
    config = accounts_config(short_dir, metrics="127.0.0.1:0")
    async with run_server(config) as server:
        scrape = Scraper(server)
        start = await scrape.metrics()
        assert (value(start, "imkit_rooms"), value(start, "imkit_room_members")) == (0, 0)
        assert value(start, "imkit_room_messages_total") == 0
        chat = AdminChat([server])
        await chat.ok(type="room_add", room="#kept")  # registered, no members: counted
        alex = await json_client(chat.address(0), "alex")
        bob = await json_client(chat.address(0), "bob")
        for client, room in ((alex, "#a"), (bob, "#a"), (bob, "#b")):
            assert (await _join(client, room))["type"] == "joined"
        await alex.request(type="message", room="#a", text="to the room")
        await alex.request(type="message", text="to the lobby")
        now = await scrape.metrics()
        assert (value(now, "imkit_rooms"), value(now, "imkit_room_members")) == (3, 3)
        assert value(now, "imkit_room_messages_total") == 1
        assert value(now, "imkit_messages_received_total", kind="public") == 2
