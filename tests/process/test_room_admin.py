"""The administrator's rooms end to end: an ``imkit serve`` subprocess, real clients over
TCP and the real commands (``imkit rooms``, ``room add|remove|op|deop|set``, ``who
--room``, ``kick --room``, ``history --room``, ``ban --room``, ``unban --room``), their
output and exit statuses; and a registered room that survives a restart of ``imkit
serve --db FILE``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LineClient, ServerProcess, joined, run_imkit, start_server_process
from tests.support.accounts import COST, json_hello


class Served:
    """``imkit serve`` with an admin socket of its own (and maybe a database)."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.args = args
        self.socket = folder / "admin.sock"
        self.process = self._start()

    def _start(self) -> ServerProcess:
        return start_server_process(
            *("--idle-timeout", "0", "--password-hash-cost", str(COST), "--rate", "0"),
            *("--admin-socket", str(self.socket), *self.args),
        )

    @property
    def address(self) -> str:
        return self.process.address

    def restart(self) -> None:
        assert self.process.stop() == 0, self.process.stderr()
        self.process = self._start()

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_imkit(*args, "--admin-socket", str(self.socket), stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.cli(*args, stdin=stdin)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == ""
        return result.stdout

    def rooms(self) -> list[dict[str, Any]]:
        listed = json.loads(self.ok("rooms", "--json"))
        assert isinstance(listed, list)
        return listed


@pytest.fixture
def served(short_dir: Path) -> Iterator[Served]:
    server = Served(short_dir, "--db", str(short_dir / "chat.db"))
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
def admin_only(short_dir: Path) -> Iterator[Served]:
    server = Served(short_dir, "--db", "none", "--room-creation", "admin")
    try:
        yield server
    finally:
        server.process.stop()


async def _json_join(client: LineClient, room: str, **fields: Any) -> dict[str, Any]:
    return await client.request(type="join", room=room, **fields)


async def _text_join(client: LineClient, room: str) -> None:
    await client.send(f"join|{room}\n")
    await client.line_matching(rf"^{room} \* you have joined {room}$")


async def test_a_registered_room_survives_a_restart(served: Served) -> None:
    served.ok("account", "add", "alex", "--password-stdin", stdin="pw\n")
    out = served.ok(
        "room", "add", "#Builds", "--topic", "nightly builds", "--secret", "--moderated"
    )
    assert out == "registered #Builds (+mnst, 0 members)\n"
    assert served.ok("room", "op", "#builds", "ALEX") == "alex is now an operator of #Builds\n"
    assert served.ok("ban", "sam", "--room", "#builds") == "banned sam from #Builds\n"
    assert served.ok("room", "set", "#builds", "--limit", "20", "--invite-only") == (
        "#Builds is +imnstl 20; topic: nightly builds\n"
    )
    served.restart()
    [row] = served.rooms()
    assert row == {
        "room": "#Builds",
        "members": 0,
        "topic": "nightly builds",
        "modes": "+imnstl",
        "args": ["20"],
        "registered": True,
        "secret": True,
        "operators": ["alex"],
        "bans": ["sam"],
        "exceptions": [],
        "invite_exceptions": [],
    }
    # alex, logged in, joins past +i as the room's operator; sam is kept out
    alex, _ = await json_hello(served.address, login={"name": "alex", "password": "pw"})
    reply = await _json_join(alex, "#builds")
    assert (reply["type"], reply["operator"], reply["topic"]) == ("joined", True, "nightly builds")
    sam = await json_hello(served.address, name="sam")
    refused = await _json_join(sam[0], "#builds")
    assert refused["code"] in ("banned_from_room", "invite_only")
    # the table marks it registered; deop, then remove it, and it is gone after a restart
    table = served.ok("rooms").splitlines()
    assert table[0].split() == ["ROOM", "MEMBERS", "MODES", "TOPIC"]
    assert table[1].split()[:4] == ["#Builds", "*", "1", "+imnstl"]
    assert table[-1].startswith("* registered")
    assert served.ok("room", "deop", "#builds", "alex") == (
        "alex is no longer an operator of #Builds\n"
    )
    assert served.ok("room", "remove", "#builds") == (
        "#Builds unregistered and ended; 1 member taken out\n"
    )
    kicked = await alex.json_of_type("kick")
    assert (kicked["room"], kicked["by"]) == ("#Builds", "the administrator")
    served.restart()
    assert served.rooms() == []


async def test_kick_who_history_and_ban_with_a_room(served: Served) -> None:
    alex = await joined(served.address, "alex")
    sam = await joined(served.address, "sam")
    await alex.line_matching("user is online")
    await _text_join(alex, "#dev")
    await _text_join(sam, "#dev")
    await alex.send("to|#dev|hello room\n")
    await alex.line_matching("hello room")

    users = json.loads(served.ok("who", "--room", "#DEV", "--json"))
    assert [(u["name"], u["operator"], u["voice"]) for u in users] == [
        ("alex", True, False),
        ("sam", False, False),
    ]
    table = served.ok("who", "--room", "#dev").splitlines()
    assert table[0].split()[-1] == "ROOM"
    assert [line.split()[-1] for line in table[1:]] == ["operator", "-"]

    history = served.ok("history", "--room", "#dev", "-n", "5").splitlines()
    assert len(history) == 1
    assert history[0].startswith("#DEV past ") or history[0].startswith("#dev past ")
    assert history[0].endswith(f"[{alex.addr}]alex:hello room")

    assert served.ok("ban", "sam", "--room", "#dev") == (
        "banned sam from #dev; still in it until kicked (imkit kick NAME --room): sam\n"
    )
    await alex.line_matching(r"^#dev \* the administrator set mode \+b sam$")
    out = served.ok("kick", "sam", "--room", "#dev", "--reason", "flooding")
    assert out == "kicked sam from #dev\n"
    line = "#dev * sam was kicked by the administrator: flooding\n"
    assert await sam.line_matching("was kicked") == line
    # sam is still online, in the lobby; the ban keeps it out of the room
    await sam.send("still here\n")
    assert await alex.line_matching("still here") == f"[{sam.addr}]sam:still here\n"
    await sam.send("join|#dev\n")
    assert await sam.line_matching("^error") == "error: you are banned from #dev\n"
    assert served.ok("unban", "sam", "--room", "#dev") == "sam is no longer banned from #dev\n"
    await _text_join(sam, "#dev")

    # refusals: exit 1 with the reason on stderr, usage errors exit 2
    result = served.cli("kick", "nobody", "--room", "#dev")
    assert (result.returncode, result.stdout) == (1, "")
    assert "no user named 'nobody' is online" in result.stderr
    result = served.cli("room", "remove", "#nowhere")
    assert (result.returncode, result.stderr.strip()) == (1, "Error: there is no room #nowhere")
    result = served.cli("who", "--room", "nohash")
    assert result.returncode == 1 and "not a room's name" in result.stderr
    assert served.cli("ban", "sam", "--room", "#dev", "--for", "1h").returncode == 2
    assert served.cli("room", "set", "#dev").returncode == 2
    assert served.cli("room", "set", "#dev", "--key", "k", "--no-key").returncode == 2


async def test_rooms_json_lists_a_secret_room(served: Served) -> None:
    alex = await json_hello(served.address, name="alex")
    await _json_join(alex[0], "#hidden")
    await alex[0].request(type="mode", room="#hidden", changes="+s")
    [row] = served.rooms()
    assert (row["room"], row["secret"], row["members"], row["registered"]) == (
        "#hidden",
        True,
        1,
        False,
    )
    bob, _ = await json_hello(served.address, name="bob")
    assert [r["room"] for r in (await bob.request(type="rooms"))["rooms"]] == ["#lobby"]
    stats = json.loads(served.ok("stats", "--json"))
    assert (stats["rooms"], stats["room_members"]) == (1, 1)
    assert "rooms" in served.ok("stats")


async def test_only_room_add_makes_rooms_with_room_creation_admin(admin_only: Served) -> None:
    alex, _ = await json_hello(admin_only.address, name="alex")
    refused = await _json_join(alex, "#dev")
    assert (refused["type"], refused["code"]) == ("error", "no_such_room")
    admin_only.ok("room", "add", "#dev", "--topic", "the dev room")
    joined_reply = await _json_join(alex, "#dev")
    assert (joined_reply["type"], joined_reply["topic"]) == ("joined", "the dev room")
