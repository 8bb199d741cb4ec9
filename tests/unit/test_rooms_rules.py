"""Rooms' rules and requests, pure: names and keys, masks, admission, settings, and the
parsing of rooms' lines and JSON requests (imkit.rules.rooms,
imkit.protocol.room_requests)."""

from __future__ import annotations

import json

import pytest

from imkit.protocol import (
    ChatMessage,
    Invalid,
    JoinRoom,
    ListRooms,
    ModeChange,
    ModesInfo,
    PrivateMessage,
    PublicMessage,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
    encode_json,
    encode_text,
    parse_json_request,
    parse_text,
)
from imkit.rules.rooms import (
    MAX_INVITES,
    MAX_ROOM_BANS,
    Mask,
    RoomState,
    address_fields,
    glob_matches,
    mask_fields,
    parse_mask,
    room_key,
    room_problem,
)


@pytest.mark.parametrize(
    "name", ["#a", "#builds", "#ops-eu.v2_x", "#café", "#сборка", "#" + "x" * 50]
)
def test_room_names_that_are_valid(name: str) -> None:
    assert room_problem(name) is None


@pytest.mark.parametrize(
    "name",
    ["builds", "#", "#" + "x" * 51, "#a b", "#a|b", "#a:b", "#a#b", "#\u200b", "#\u0301a", "##"],
)
def test_room_names_that_are_not(name: str) -> None:
    assert room_problem(name) is not None


def test_rooms_compare_like_user_names() -> None:
    assert room_key("#Builds") == room_key("#builds") == room_key("#BUILDS")
    assert room_key("#builds") != room_key("#build")
    assert room_key("#ＢＵＩＬＤＳ") == room_key("#builds")  # NFKC: fullwidth letters


def test_masks_match_a_name_an_account_an_address_or_a_network() -> None:
    by_name = parse_mask("Sam")
    by_account = parse_mask("account:alex")
    by_address = parse_mask("192.0.2.7")
    by_network = parse_mask("2001:db8::/32")
    assert isinstance(by_name, Mask) and by_name.matches("sam", None, "10.0.0.1:5")
    assert isinstance(by_account, Mask) and by_account.matches("whoever", "ALEX", "10.0.0.1:5")
    assert not by_account.matches("alex", None, "10.0.0.1:5")  # a guest named alex
    assert isinstance(by_address, Mask) and by_address.matches("x", None, "192.0.2.7:40000")
    assert not by_address.matches("x", None, "192.0.2.8:40000")
    assert isinstance(by_network, Mask) and by_network.matches("x", None, "[2001:db8::9]:1")
    assert not by_network.matches("x", None, "192.0.2.7:1")
    assert isinstance(parse_mask("a b"), str) and isinstance(parse_mask(""), str)


def test_a_network_mask_as_a_script_matches_it_by_bits() -> None:
    mask = parse_mask("192.0.2.0/24")
    assert isinstance(mask, Mask)
    fields = mask_fields(mask, "op")
    version, bits = address_fields("192.0.2.77:5000").split(":")
    assert fields["v"] == int(version) == 4
    assert len(fields["bits"]) == 24 and bits.startswith(fields["bits"])
    other = address_fields("192.0.3.77:5000").split(":")[1]
    assert not other.startswith(fields["bits"])


def test_admission_order_ban_then_invite_then_key_then_limit() -> None:
    state = RoomState("#r")
    state.add(1, None, creator=True)
    state.flags |= {"i"}
    state.key, state.limit = "k", 2
    assert state.admission("bob", None, "10.0.0.2:1", "k") == "invite_only"
    state.invite("bob")
    assert state.admission("bob", None, "10.0.0.2:1", None) == "bad_key"
    assert state.admission("bob", None, "10.0.0.2:1", "k") is None
    state.add(2, None, creator=False)
    assert state.admission("bob", None, "10.0.0.2:1", "k") == "room_full"
    assert state.admission("bob", None, "10.0.0.2:1", None, remembered=True) is None
    mask = parse_mask("10.0.0.0/8")
    assert isinstance(mask, Mask)
    state.bans[mask.text] = (mask, "op")
    assert state.admission("bob", None, "10.0.0.2:1", "k", remembered=True) == "banned_from_room"


def test_speaking_and_topics_in_a_new_room_and_after_changes() -> None:
    state = RoomState("#r")
    op = state.add(1, None, creator=True)
    state.add(2, None, creator=False)
    assert op.operator and state.modes(show_key=True) == ("+nt", [])
    assert state.speaking(3) == "not_in_room"  # +n
    assert state.may_set_topic(2) == "not_room_operator"  # +t
    assert state.apply(ModeChange("n", False), "op") and state.speaking(3) is None
    assert not state.apply(ModeChange("n", False), "op")  # no change twice
    assert state.apply(ModeChange("m", True), "op")
    assert state.speaking(2) == "muted" and state.speaking(1) is None
    state.members[2].voice = True
    assert state.speaking(2) is None
    assert state.apply(ModeChange("k", True, "s3cret"), "op")
    assert state.apply(ModeChange("l", True, "9"), "op")
    assert state.modes(show_key=False) == ("+mtkl", ["*", "9"])


def test_registered_settings_round_trip() -> None:
    state = RoomState("#Kept", registered=True, topic="t", key="k", limit=5)
    state.operators.add("alex")
    mask = parse_mask("account:sam")
    assert isinstance(mask, Mask)
    state.bans[mask.text] = (mask, "alex")
    again = RoomState.from_fields(state.fields())
    assert again.fields() == state.fields() and again.registered


def test_text_lines_that_are_rooms_and_those_that_stay_messages() -> None:
    assert parse_text("join|#b|key") == JoinRoom(room="#b", key="key")
    assert parse_text("to|#b|hi|there") == RoomMessage(room="#b", text="hi|there")
    assert parse_text("to|bob|hi") == PrivateMessage(to="bob", text="hi")
    assert parse_text("who|#b") == Who(room="#b")
    assert parse_text("who|bob") == PublicMessage(text="who|bob")  # as the seed: a message
    assert parse_text("rooms") == ListRooms()
    assert parse_text("topic|#b|") == Topic(room="#b", topic="")
    mode = parse_text("mode|#b|+kl-m|sesame|20")
    assert mode == RoomMode(
        room="#b",
        changes=(
            ModeChange("k", True, "sesame"),
            ModeChange("l", True, "20"),
            ModeChange("m", False),
        ),
    )
    for line in (
        "join|b",
        "mode|#b|+q",
        "mode|#b|+l|x",
        "kick|#b",
        "mode|#b|+o",
        "part|",
        "to|#b|",
    ):
        assert isinstance(parse_text(line), Invalid), line


def test_json_requests_with_rooms() -> None:
    assert parse_json_request({"type": "message", "room": "#b", "text": "x", "id": 1}) == (
        RoomMessage(id=1, room="#b", text="x")
    )
    both = parse_json_request({"type": "message", "room": "#b", "to": "bob", "text": "x"})
    assert isinstance(both, Invalid) and both.code == "bad_request"
    bad = parse_json_request({"type": "join", "room": "nohash", "id": 2})
    assert isinstance(bad, Invalid) and bad.code == "bad_room_name" and bad.id == 2
    args = parse_json_request({"type": "mode", "room": "#b", "changes": "+o", "args": [1]})
    assert isinstance(args, Invalid)


def test_a_room_message_line_and_event() -> None:
    room = ChatMessage("alex", "1.2.3.4:5", None, "hi", 0.0, "0000000000001000", None, "#b")
    lobby = ChatMessage(
        "alex", "1.2.3.4:5", None, "hi", 0.0, "0000000000001000", None, "#lobby", lobby=True
    )
    assert encode_text(room) == b"#b [1.2.3.4:5]alex:hi\n"
    assert encode_text(lobby) == b"[1.2.3.4:5]alex:hi\n"  # the seed's line
    assert b'"room":"#lobby"' in encode_json(lobby)
    assert room.past_line() == "#b past 1970-01-01T00:00:00Z [1.2.3.4:5]alex:hi"


def test_a_room_holds_a_bounded_number_of_bans_and_invites() -> None:
    state = RoomState("#r")
    for n in range(MAX_ROOM_BANS):
        assert state.apply(ModeChange("b", True, f"user{n}"), "op")
    assert state.bans_problem([ModeChange("b", True, "one-more")]) is not None
    assert state.bans_problem([ModeChange("b", True, "user1")]) is None  # there already
    for n in range(MAX_INVITES + 5):
        state.invite(f"guest{n}")
    assert len(state.invited) == MAX_INVITES and "guest0" not in state.invited


# ------------------------------------------------- ban and invite exceptions (+e, +I)


def test_a_name_pattern_matches_names_by_their_keys_whole() -> None:
    mask = parse_mask("BA*")
    assert isinstance(mask, Mask) and mask.kind == "glob"
    assert mask.matches("bar", None, "10.0.0.1:5") and mask.matches("Ba", None, "")
    assert not mask.matches("abar", None, "")
    one = parse_mask("b?r")
    assert isinstance(one, Mask) and one.matches("bur", None, "")
    assert not one.matches("br", None, "")
    everyone = parse_mask("*")
    assert isinstance(everyone, Mask) and everyone.matches("anyone", None, "")
    assert glob_matches("a.c", "a.c") and not glob_matches("a.c", "abc")  # '.' is a '.'
    assert glob_matches("*x*y", "axxby") and not glob_matches("*x*y", "axxb")
    accented = parse_mask("zo?")  # keys are decomposed: ? is a letter and its marks
    assert isinstance(accented, Mask) and accented.matches("Zoë", None, "")
    assert not glob_matches("*e*", "zoe\u0308") and glob_matches("*e\u0308", "zoe\u0308")
    assert mask_fields(mask, "op") == {"mask": "BA*", "kind": "glob", "key": "ba*", "by": "op"}


def test_a_ban_exception_lets_in_whom_a_ban_keeps_out() -> None:
    state = RoomState("#r")
    assert state.apply(ModeChange("b", True, "ba*"), "op")
    assert state.admission("bar", None, "10.0.0.2:1", None) == "banned_from_room"
    assert state.apply(ModeChange("e", True, "*ar"), "op")
    assert state.admission("bar", None, "10.0.0.2:1", None) is None
    assert state.admission("baz", None, "10.0.0.2:1", None) == "banned_from_room"
    assert not state.apply(ModeChange("e", True, "*ar"), "op")  # there already
    assert list(state.masks("e")) == ["*ar"] and list(state.masks("b")) == ["ba*"]
    assert state.apply(ModeChange("e", False, "*ar"), "op")
    assert state.admission("bar", None, "10.0.0.2:1", None) == "banned_from_room"


def test_an_invite_exception_passes_invite_only_and_nothing_else() -> None:
    state = RoomState("#r")
    state.flags |= {"i"}
    state.key = "k"
    assert state.admission("bar", None, "10.0.0.2:1", "k") == "invite_only"
    assert state.apply(ModeChange("I", True, "10.0.0.0/8"), "op")
    assert state.admission("bar", None, "10.0.0.2:1", "k") is None
    assert state.admission("bar", None, "10.0.0.2:1", None) == "bad_key"  # the key still
    assert state.admission("bar", None, "192.0.2.1:1", "k") == "invite_only"
    state.apply(ModeChange("b", True, "bar"), "op")
    assert state.admission("bar", None, "10.0.0.2:1", "k") == "banned_from_room"


def test_each_list_of_masks_has_its_own_bound() -> None:
    state = RoomState("#r")
    for n in range(MAX_ROOM_BANS):
        state.apply(ModeChange("e", True, f"user{n}"), "op")
    assert state.bans_problem([ModeChange("b", True, "x")]) is None
    problem = state.bans_problem([ModeChange("e", True, "x")])
    assert problem == f"a room has at most {MAX_ROOM_BANS} ban exceptions: lift one first"
    assert state.bans_problem([ModeChange("e", True, "user1")]) is None  # there already


def test_a_registered_rooms_exceptions_are_kept_with_its_fields() -> None:
    state = RoomState("#r", registered=True)
    state.apply(ModeChange("e", True, "account:kim"), "op")
    state.apply(ModeChange("I", True, "b*"), "op")
    fields = state.fields()
    assert [m["mask"] for m in fields["exceptions"]] == ["account:kim"]
    again = RoomState.from_fields(fields)
    assert list(again.exceptions) == ["account:kim"] and list(again.invite_exceptions) == ["b*"]
    assert again.invite_exceptions["b*"][1] == "op"
    del fields["exceptions"], fields["invite_exceptions"]  # kept before +e and +I
    assert RoomState.from_fields(fields).exceptions == {}


def test_list_requests_and_their_replies_in_both_modes() -> None:
    listed = parse_text("mode|#r|+e")
    assert isinstance(listed, RoomMode) and listed.listing == "e" and not listed.changes
    bare = parse_text("mode|#r|I")
    assert isinstance(bare, RoomMode) and bare.listing == "I"
    changed = parse_text("mode|#r|+eI|bob|b*")
    assert isinstance(changed, RoomMode) and changed.listing == ""
    assert changed.changes == (ModeChange("e", True, "bob"), ModeChange("I", True, "b*"))
    asked = parse_json_request({"type": "mode", "room": "#r", "changes": "+I"})
    assert isinstance(asked, RoomMode) and asked.listing == "I"
    assert isinstance(parse_text("mode|#r|+e|a b"), Invalid)
    info = ModesInfo(1, "#r", "+nt", (), ("bob", "b*"), listing="I")
    assert encode_text(info) == b"#r * invite_exception bob\n#r * invite_exception b*\n"
    assert json.loads(encode_json(info))["invite_exceptions"] == ["bob", "b*"]
    assert encode_text(ModesInfo(1, "#r", "+nt", (), (), listing="e")) == (
        b"#r * no ban exceptions\n"
    )
