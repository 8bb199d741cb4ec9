"""Rooms on one in-process server: what needs its own configuration (accounts, limits,
who may make rooms, mutes). The behaviour every server shares, on one node and on two,
is tests/behaviour/test_rooms.py."""

from __future__ import annotations

import re
from pathlib import Path

from imkit.hub import Hub
from imkit.server import ServerConfig
from tests.support import LineClient, ask, joined, json_client, run_server
from tests.support.accounts import add, config, json_hello


async def _said(client: LineClient, pattern: str) -> str:
    return (await client.line_matching(pattern)).rstrip("\n")


async def test_an_account_is_put_back_in_its_rooms_when_it_logs_in(short_dir: Path) -> None:
    async with run_server(config(short_dir), Hub()) as server:
        address = server.addresses[0]
        await add(server, "alex", "pw")
        alex, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
        await alex.request(type="join", room="#ops")
        await alex.request(type="join", room="#dev")
        await alex.request(type="part", room="#dev")  # a part forgets the room
        keeper = await json_client(address, "keeper")
        await keeper.request(type="join", room="#ops")
        await alex.aclose()
        said = await keeper.request(type="message", room="#ops", text="while you were out")
        again, welcome = await json_hello(address, login={"name": "alex", "password": "pw"})
        assert welcome["type"] == "welcome"
        rejoined = await again.json_of_type("joined")
        assert rejoined["room"] == "#ops" and "id" not in rejoined
        history = await again.request(type="history", room="#ops")
        assert [m["msgid"] for m in history["messages"]] == [said["msgid"]]
        rooms = await again.request(type="rooms")
        assert [r["room"] for r in rooms["rooms"]] == ["#lobby", "#ops"]  # not #dev


async def test_text_login_rejoins_with_a_confirmation_line(short_dir: Path) -> None:
    async with run_server(config(short_dir), Hub()) as server:
        address = server.addresses[0]
        await add(server, "sam", "pw")
        first = await joined(address)
        await first.send("login|sam|pw\njoin|#t\n")
        await _said(first, r"^#t \* you have joined")
        await first.aclose()
        second = await joined(address)
        await second.send("login|sam|pw\n")
        assert await _said(second, "logged in") == "you have logged in as sam"
        assert await _said(second, r"^#t") == "#t * you have joined #t"


async def test_limits_on_rooms_per_user_and_on_the_server(short_dir: Path) -> None:
    settings = config(short_dir, max_rooms=3, max_rooms_per_user=2)
    async with run_server(settings, Hub(max_rooms=3, max_rooms_per_user=2)) as server:
        address = server.addresses[0]
        a = await json_client(address, "alex")
        assert (await a.request(type="join", room="#one"))["type"] == "joined"
        assert (await a.request(type="join", room="#two"))["type"] == "joined"
        third = await a.request(type="join", room="#three")
        assert third["code"] == "too_many_rooms"
        assert (await a.request(type="join", room="#lobby"))["type"] == "joined"  # not counted
        b = await json_client(address, "bob")
        assert (await b.request(type="join", room="#three"))["type"] == "joined"
        assert (await b.request(type="join", room="#four"))["code"] == "too_many_rooms"
        assert (await b.request(type="join", room="#one"))["type"] == "joined"  # exists


async def test_room_creation_by_accounts_only(short_dir: Path) -> None:
    async with run_server(config(short_dir), Hub(room_creation="accounts")) as server:
        address = server.addresses[0]
        await add(server, "alex", "pw")
        guest = await json_client(address, "guest")
        assert (await guest.request(type="join", room="#new"))["code"] == "login_required"
        alex, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
        assert (await alex.request(type="join", room="#new"))["operator"] is True
        assert (await guest.request(type="join", room="#new"))["type"] == "joined"


async def test_only_the_administrator_makes_rooms(short_dir: Path) -> None:
    async with run_server(config(short_dir), Hub(room_creation="admin")) as server:
        user = await json_client(server.addresses[0], "user")
        refused = await user.request(type="join", room="#new")
        assert refused["code"] == "no_such_room"
        assert "administrator" in refused["message"]


async def test_a_server_mute_applies_in_rooms(short_dir: Path) -> None:
    async with run_server(config(short_dir), Hub()) as server:
        address = server.addresses[0]
        loud = await json_client(address, "loud")
        await loud.request(type="join", room="#r")
        assert (await ask(server, type="mute", name="loud"))["type"] == "ok"
        refused = await loud.request(type="message", room="#r", text="hello?")
        assert refused["code"] == "muted"
        assert (await loud.request(type="topic", room="#r", topic="x"))["code"] == "muted"
        asked = await loud.request(type="topic", room="#r")  # asking is not speaking
        assert asked["type"] == "topic"


async def test_text_mode_operators_kick_ban_invite_and_modes(short_dir: Path) -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0, rate=0), Hub()) as server:
        address = server.addresses[0]
        op = await joined(address, "opal")
        sam = await joined(address, "sam")
        await op.send("join|#x\n")
        await _said(op, r"^#x \* you have joined")
        await sam.send("join|#x\n")
        await _said(sam, r"^#x \* you have joined")
        assert await _said(op, r"has joined") == f"#x * sam [{sam.addr}] has joined"
        await op.send("mode|#x|+v|sam\n")
        assert await _said(sam, "set mode") == "#x * opal set mode +v sam"
        await op.send("kick|#x|sam|too loud\n")
        assert await _said(sam, "kicked") == "#x * sam was kicked by opal: too loud"
        assert await _said(op, "kicked") == "#x * sam was kicked by opal: too loud"
        await op.send("ban|#x|sam\n")
        assert await _said(op, "set mode") == "#x * opal set mode +b sam"
        await sam.send("join|#x\n")
        assert await _said(sam, "^error") == "error: you are banned from #x"
        await op.send("mode|#x|+b\n")
        assert await _said(op, r"^#x \* ban") == "#x * ban sam"
        await op.send("unban|#x|sam\nmode|#x|+i\ninvite|#x|sam\n")
        assert await _said(sam, "invites") == "#x * opal invites you to #x"
        assert await _said(op, "invited") == "#x * you invited sam"
        await sam.send("join|#x\n")
        assert await _said(sam, r"^#x \*") == "#x * you have joined #x"
        await op.send("mode|#x\n")
        assert await _said(op, r"^#x \* mode") == "#x * mode +int"
        await sam.send("mode|#x|+m\n")
        assert await _said(sam, "^error") == "error: only #x's operators may do that"


async def test_a_rename_is_told_to_room_members_outside_the_lobby_once(
    short_dir: Path,
) -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0, rate=0), Hub()) as server:
        address = server.addresses[0]
        a = await json_client(address, "alex")
        b = await json_client(address, "bob")
        await a.request(type="join", room="#r")
        await b.request(type="join", room="#r")
        await b.request(type="part", room="#lobby")
        await a.request(type="rename", name="alexandra")
        renamed = await b.json_of_type("rename")
        assert (renamed["old"], renamed["new"]) == ("alex", "alexandra")
        await a.request(type="message", room="#r", text="after")
        message = await b.json_of_type("message")
        assert message["text"] == "after"  # and no second rename came before it


async def test_names_beginning_with_a_hash_are_not_names(short_dir: Path) -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0, rate=0), Hub()) as server:
        user = await joined(server.addresses[0])
        await user.send("rename|#alex\n")
        line = await _said(user, "^error")
        assert re.match(r"error: invalid name '#alex': a name cannot begin with '#'", line)


async def test_a_registered_rooms_exceptions_outlive_a_restart(short_dir: Path) -> None:
    """+e and +I are a registered room's settings: kept in the SQLite file with its bans
    and read back when the server starts again."""
    settings = config(short_dir, db=str(short_dir / "imkit.db"))
    login = {"name": "alex", "password": "pw"}
    async with run_server(settings, Hub()) as server:
        await add(server, "alex", "pw")
        assert (await ask(server, type="room_add", room="#ops", invite_only=True))["type"] == "ok"
        assert (await ask(server, type="room_op", room="#ops", account="alex"))["type"] == "ok"
        alex, _ = await json_hello(server.addresses[0], login=login)
        assert (await alex.request(type="join", room="#ops"))["type"] == "joined"
        changed = await alex.request(type="mode", room="#ops", changes="+eI", args=["x*", "b?b"])
        assert changed["type"] == "ok", changed
    async with run_server(settings, Hub()) as server:
        bob = await json_client(server.addresses[0], "bob")
        assert (await bob.request(type="join", room="#ops"))["type"] == "joined"  # +I b?b
        listed = await bob.request(type="mode", room="#ops", changes="+e")
        assert listed["exceptions"] == ["x*"]
        cy = await json_client(server.addresses[0], "cy")
        assert (await cy.request(type="join", room="#ops"))["code"] == "invite_only"
