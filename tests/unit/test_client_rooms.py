"""The clients' side of rooms (docs/rooms.md), with no sockets: every room request a
client encodes is read back by the server's own parser as the same command, every room
event the server encodes is decoded back by the client, and chat's room lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imkit.client.chat import ACCOUNT_MENU, MENU, describe, describe_past
from imkit.client.chat_rooms import describe_room_event, room_name
from imkit.client.library import Client
from imkit.protocol import (
    ChatMessage,
    Command,
    Event,
    History,
    Invite,
    Invited,
    Joined,
    JoinRoom,
    ListRooms,
    ModeChange,
    ModesChanged,
    ModesInfo,
    Ok,
    PartRoom,
    RoomInfo,
    RoomJoin,
    RoomKick,
    RoomKicked,
    RoomList,
    RoomMessage,
    RoomMode,
    RoomOk,
    RoomPart,
    Topic,
    TopicInfo,
    UserInfo,
    UserList,
    Who,
    encode_request,
)
from imkit.protocol.client import decode_event, mode_changes
from imkit.protocol.parsing import parse_json_request

# ----------------------------------------------------------------- requests out


@pytest.mark.parametrize(
    "command",
    [
        JoinRoom(id=1, room="#builds"),
        JoinRoom(id=2, room="#builds", key="s3cret"),
        PartRoom(id=3, room="#builds"),
        PartRoom(id=4, room="#Café", reason="lunch | later"),
        RoomMessage(id=5, room="#builds", text="green ✓"),
        ListRooms(id=6),
        Topic(id=7, room="#builds"),
        Topic(id=8, room="#builds", topic="nightly builds"),
        Topic(id=9, room="#builds", topic=""),
        RoomKick(id=10, room="#builds", name="sam"),
        RoomKick(id=11, room="#builds", name="sam", reason="flooding"),
        Invite(id=12, room="#builds", name="sam"),
        RoomMode(id=13, room="#builds"),
        RoomMode(id=14, room="#builds", listing="b"),
        RoomMode(id=15, room="#builds", changes=(ModeChange("m", True),)),
        RoomMode(
            id=16,
            room="#builds",
            changes=(
                ModeChange("k", True, "secret"),
                ModeChange("l", True, "20"),
                ModeChange("m", False),
                ModeChange("o", False, "sam"),
                ModeChange("v", True, "kim"),
            ),
        ),
        RoomMode(id=17, room="#builds", changes=(ModeChange("b", True, "192.0.2.0/24"),)),
        Who(id=18, room="#builds"),
        Who(id=19),
        History(id=20, limit=10, room="#builds"),
        History(id=21, limit=10, before="1795764673091001", room="#builds"),
    ],
    ids=repr,
)
def test_the_server_reads_each_room_request_as_the_client_meant_it(command: Command) -> None:
    line = encode_request(command)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_json_request(json.loads(line)) == command


def test_mode_changes_write_a_sign_only_where_it_changes() -> None:
    changes = (
        ModeChange("k", True, "key"),
        ModeChange("l", True, "5"),
        ModeChange("m", False),
        ModeChange("t", False),
        ModeChange("o", True, "sam"),
    )
    assert mode_changes(changes) == ("+kl-mt+o", ["key", "5", "sam"])


def test_a_room_message_is_a_message_with_a_room() -> None:
    fields = json.loads(encode_request(RoomMessage(id=1, room="#b", text="hi")))
    assert fields == {"type": "message", "room": "#b", "text": "hi", "id": 1}


# ------------------------------------------------------------------- events in


def decoded(event: Event) -> Event | None:
    """``event`` as a client decodes the JSON the server sends for it."""
    return decode_event(json.loads(json.dumps(event.json_fields())))


@pytest.mark.parametrize(
    "event",
    [
        Joined(1, "#builds", "nightly", "+nt", 3, operator=False),
        Joined(None, "#builds", None, "+ntk", 1, operator=True),
        RoomJoin("#builds", "sam", "127.0.0.1:50318"),
        RoomPart("#builds", "sam", "127.0.0.1:50318"),
        RoomPart("#builds", "sam", "127.0.0.1:50318", "lunch"),
        RoomKicked("#builds", "sam", "alex"),
        RoomKicked("#builds", "sam", "alex", "flooding"),
        ModesChanged("#builds", "alex", "+o-v", ("sam", "kim")),
        ModesInfo(4, "#builds", "+ntl", ("20",)),
        ModesInfo(5, "#builds", "+nt", (), ("sam", "account:kim", "192.0.2.0/24")),
        ModesInfo(6, "#builds", "+nt", (), ()),
        Invited("#builds", "alex"),
        RoomList(7, (RoomInfo("#lobby", 12), RoomInfo("#builds", 3, "nightly"))),
        RoomList(8, ()),
        UserList(
            9,
            (
                UserInfo("alex", "127.0.0.1:1", None, operator=True),
                UserInfo("kim", "127.0.0.1:2", "kim", voice=True),
            ),
            "#builds",
        ),
        UserList(10, (UserInfo("alex", "127.0.0.1:1", "alex"),)),
        RoomOk(11, "#builds"),
        TopicInfo(12, "#builds", "nightly", "alex", 1_800_000_000.5),
        TopicInfo(13, "#builds", None),
        TopicInfo(None, "#builds", "nightly", "alex", 1_800_000_000.0, changed=True),
        TopicInfo(None, "#builds", None, "alex", 1_800_000_000.0, changed=True),
    ],
    ids=repr,
)
def test_the_client_reads_each_room_event_as_the_server_meant_it(event: Event) -> None:
    assert decoded(event) == event


def test_a_room_message_carries_its_room_and_a_private_one_none() -> None:
    public = ChatMessage("alex", "127.0.0.1:1", None, "hi", 1_800_000_000.0, "1" * 16, None, "#b")
    assert decoded(public) == public
    lobby = ChatMessage("a", "x", None, "hi", 1_800_000_000.0, "2" * 16, room="#lobby", lobby=True)
    got = decoded(lobby)
    assert isinstance(got, ChatMessage) and got.room == "#lobby"  # lobby: text mode's alone
    private = ChatMessage("alex", "127.0.0.1:1", "kim", "psst", 1_800_000_000.0)
    assert decoded(private) == private


def test_an_ok_with_a_room_is_a_room_ok_unless_it_carries_a_msgid() -> None:
    assert decode_event({"type": "ok", "id": 3, "room": "#b"}) == RoomOk(3, "#b")
    message_ok = {"type": "ok", "id": 4, "room": "#b", "msgid": "1795764673091001"}
    assert decode_event(message_ok) == Ok(4, "1795764673091001")


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "joined", "room": 5, "members": "3", "operator": "yes"},
        {"type": "rooms", "rooms": [None, 1, {"room": "#a", "members": True}]},
        {"type": "modes", "args": "x", "bans": [1, "a"]},
        {"type": "mode", "args": None},
        {"type": "topic", "time": 5},
        {"type": "users", "room": "#a", "users": [{"operator": 1}]},
    ],
)
def test_odd_room_events_are_read_without_raising(obj: dict[str, Any]) -> None:
    assert decode_event(obj) is not None


# ------------------------------------------------------------------- imkit chat


class _Stream:  # the client's stream, never used by these tests
    pass


def client_in(*rooms: str, name: str = "alex") -> Client:
    client = Client(_Stream(), timeout=1, events=False, max_events=1)  # type: ignore[arg-type]
    client.name = name
    for room in rooms:
        client._entered(room)
    return client


def test_a_message_of_a_joined_room_shows_its_room_and_the_lobby_none() -> None:
    client = client_in("#Builds")
    in_room = ChatMessage("sam", "x", None, "green", 0.0, room="#builds")
    assert describe(in_room, client) == "#builds sam: green"
    lobby = ChatMessage("sam", "x", None, "hello", 0.0, room="#lobby")
    assert describe(lobby, client) == "sam: hello"
    old_server = ChatMessage("sam", "x", None, "hello", 0.0)  # no room at all
    assert describe(old_server, client) == "sam: hello"
    private = ChatMessage("sam", "x", "alex", "psst", 0.0)
    assert describe(private, client) == "sam (private): psst"


def test_a_past_room_message_shows_its_room_after_the_time() -> None:
    message = ChatMessage("sam", "x", None, "green", 1_800_000_000.0, room="#builds")
    line = describe_past(message, room="#builds ")
    assert line.startswith("past ") and line.endswith(" #builds sam: green")


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        (RoomJoin("#b", "sam", "127.0.0.1:2"), "#b * sam has joined"),
        (RoomJoin("#b", "alex", "127.0.0.1:1"), None),  # our own join: its reply says it
        (RoomPart("#b", "sam", "127.0.0.1:2", "lunch"), "#b * sam has left: lunch"),
        (RoomPart("#b", "sam", "127.0.0.1:2"), "#b * sam has left"),
        (RoomKicked("#b", "sam", "alex", "flood"), "#b * sam was kicked by alex: flood"),
        (RoomKicked("#b", "alex", "kim"), "#b * you were kicked by kim"),
        (TopicInfo(None, "#b", "nightly", "kim", changed=True), "#b * kim set the topic: nightly"),
        (TopicInfo(None, "#b", None, "kim", changed=True), "#b * kim cleared the topic"),
        (ModesChanged("#b", "kim", "+o", ("sam",)), "#b * kim set mode +o sam"),
        (Invited("#b", "kim"), "* kim invites you to #b (7 joins a room)"),
        (Joined(None, "#b", None, "+nt", 2), "#b * you are in #b"),
        (RoomJoin("#b", "sam\x1b[2J", "x"), "#b * sam\N{REPLACEMENT CHARACTER}[2J has joined"),
    ],
)
def test_room_events_are_described(event: Event, shown: str | None) -> None:
    assert describe_room_event(event, client_in("#b")) == shown


def test_the_menus_have_the_room_items_and_the_password_item_stays_5() -> None:
    for menu in (MENU, ACCOUNT_MENU):
        assert "6 list rooms\n7 join a room\n8 talk in a room\n9 leave a room\n0 exit" in menu
    assert "5 change your password\n6 list rooms" in ACCOUNT_MENU
    assert "5 " not in MENU


def test_a_room_typed_without_its_hash_gets_one() -> None:
    assert [room_name(t) for t in ("builds", " #ops ", "", "  ")] == ["#builds", "#ops", "", ""]


def test_the_client_keeps_the_rooms_it_is_in_by_their_key() -> None:
    client = client_in("#Builds", "#ops")
    assert client.rooms_joined == ["#Builds", "#ops"]
    assert client.in_room("#builds") and client.in_room("#BUILDS")
    client._follow_rooms(RoomKicked("#BUILDS", "alex", "kim"))
    client._follow_rooms(RoomKicked("#ops", "sam", "kim"))  # someone else
    client._follow_rooms(Joined(None, "#café", None, "+nt", 1))
    assert client.rooms_joined == ["#ops", "#café"]
    client._follow_rooms(RoomPart("#ops", "alex", "x"))  # a room removed under us
    assert client.rooms_joined == ["#café"]
