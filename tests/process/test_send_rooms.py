"""`imkit send --room` as a subprocess (docs/rooms.md, docs/clients.md): a message to a
room reaches its members and nobody else; send joins the room only when it must, and
leaves it again; a room that will not have it is exit 1 with the server's reason. The
last test sends on one node of a cluster to a member on the other."""

from __future__ import annotations

import subprocess
from typing import Any

import anyio

from tests.support import LineClient, ServerProcess, json_client, run_imkit, split_addr
from tests.support.cluster import Cluster


def send(address: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    host, port = split_addr(address)
    return run_imkit("send", "--host", host, "--port", str(port), *args, stdin=stdin)


async def send_async(address: str, *args: str, stdin: str | None = None) -> Any:
    """`imkit send` in a thread, so that this test's clients keep reading meanwhile."""
    return await anyio.to_thread.run_sync(lambda: send(address, *args, stdin=stdin))


async def member(address: str, name: str, room: str, **join: Any) -> LineClient:
    client = await json_client(address, name)
    reply = await client.request(type="join", room=room, **join)
    assert reply["type"] == "joined", reply
    return client


async def events_until(client: LineClient, last: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON events ``client`` receives up to the first that has ``last``'s fields."""
    seen = []
    while True:
        event = await client.json()
        seen.append(event)
        if all(event.get(key) == value for key, value in last.items()):
            return seen


async def test_a_room_message_reaches_its_members_and_nobody_in_the_lobby_only(
    server_process: ServerProcess,
) -> None:
    address = server_process.address
    kim = await member(address, "kim", "#builds")
    lee = await json_client(address, "lee")  # the lobby only
    result = await send_async(
        address, "--as", "ci", "--room", "#Builds", "-v", "-", stdin="one\ntwo\n"
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == "sent to #Builds: one\nsent to #Builds: two\n"

    # A new room is +n: send joined it once, sent both, and left it.
    seen = await events_until(kim, {"type": "part", "name": "ci"})
    kinds = [(e["type"], e.get("text")) for e in seen if e["type"] in ("join", "message", "part")]
    assert kinds == [("join", None), ("message", "one"), ("message", "two"), ("part", None)]
    messages = [e for e in seen if e["type"] == "message"]
    assert [(m["room"], m["from"], m["to"]) for m in messages] == [("#builds", "ci", None)] * 2
    assert all(m["msgid"] for m in messages)

    # lee saw ci come and go in the lobby, and nothing of the room.
    seen = await events_until(lee, {"type": "presence", "name": "ci", "status": "offline"})
    assert {e["type"] for e in seen} == {"presence", "rename"}, seen
    assert not [e for e in seen if e.get("room") == "#builds"]


async def test_a_room_that_takes_messages_from_outside_is_not_joined(
    server_process: ServerProcess,
) -> None:
    kim = await member(server_process.address, "kim", "#open")
    assert (await kim.request(type="mode", room="#open", changes="-n"))["type"] == "ok"
    result = await send_async(server_process.address, "--as", "ci", "--room", "#open", "hi")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    seen = await events_until(kim, {"type": "presence", "name": "ci", "status": "offline"})
    assert [(e["room"], e["text"]) for e in seen if e["type"] == "message"] == [("#open", "hi")]
    assert not [e for e in seen if e["type"] in ("join", "part")], seen


def test_a_bad_room_name_is_exit_1_with_the_reason(server_process: ServerProcess) -> None:
    result = send(server_process.address, "--room", "builds", "hi")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Error: 'builds' is not a room's name"), result.stderr


async def test_an_invite_only_room_is_exit_1_and_hears_nothing(
    server_process: ServerProcess,
) -> None:
    kim = await member(server_process.address, "kim", "#inner")
    assert (await kim.request(type="mode", room="#inner", changes="+i"))["type"] == "ok"
    result = await send_async(server_process.address, "--as", "ci", "--room", "#inner", "hi")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and "invite" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    seen = await events_until(kim, {"type": "presence", "name": "ci", "status": "offline"})
    assert {e["type"] for e in seen} == {"presence", "rename"}, seen


async def test_a_keyed_room_needs_its_key(server_process: ServerProcess) -> None:
    address = server_process.address
    kim = await member(address, "kim", "#keyed")
    assert (await kim.request(type="mode", room="#keyed", changes="+k", args=["s3"]))[
        "type"
    ] == "ok"
    result = await send_async(address, "--room", "#keyed", "hi")
    assert (result.returncode, result.stderr) == (
        1,
        "Error: #keyed has a key: give it with --room-key\n",
    )
    result = await send_async(address, "--room", "#keyed", "--room-key", "nope", "hi")
    assert result.returncode == 1
    assert result.stderr == "Error: #keyed has a key: the key given with --room-key is wrong\n"
    result = await send_async(address, "--room", "#keyed", "--room-key", "s3", "with the key")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    seen = await events_until(kim, {"type": "message", "text": "with the key"})
    assert seen[-1]["room"] == "#keyed"


async def test_a_moderated_room_refuses_and_send_leaves_it(server_process: ServerProcess) -> None:
    kim = await member(server_process.address, "kim", "#quiet")
    assert (await kim.request(type="mode", room="#quiet", changes="+m"))["type"] == "ok"
    result = await send_async(server_process.address, "--as", "ci", "--room", "#quiet", "hi")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: "), result.stderr
    seen = await events_until(kim, {"type": "part", "name": "ci"})
    assert [e["type"] for e in seen if e["type"] in ("join", "message", "part")] == [
        "join",
        "part",
    ]


def test_to_and_room_cannot_go_together(server_process: ServerProcess) -> None:
    result = send(server_process.address, "--to", "kim", "--room", "#b", "hi")
    assert result.returncode == 2
    assert "--to and --room cannot go together" in result.stderr
    result = send(server_process.address, "--room-key", "k", "hi")
    assert result.returncode == 2
    assert "--room-key goes with --room" in result.stderr


async def test_send_on_one_node_reaches_a_room_member_on_the_other(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2)
    kim = await member(two.address, "kim", "#builds")
    lee = await json_client(two.address, "lee")
    result = await send_async(one.address, "--as", "ci", "--room", "#builds", "across")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    seen = await events_until(kim, {"type": "message", "text": "across"})
    assert (seen[-1]["room"], seen[-1]["from"]) == ("#builds", "ci")
    seen = await events_until(lee, {"type": "presence", "name": "ci", "status": "offline"})
    assert not [e for e in seen if e.get("room") == "#builds"], seen
