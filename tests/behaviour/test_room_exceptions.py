"""Ban exceptions (+e) and invite exceptions (+I) of a room (docs/rooms.md), in JSON and
text mode, on one node and on two: an exception lets in whom a ban keeps out, an invite
exception passes +i without an invite, both are listed as bans are, and each list is
bounded."""

from __future__ import annotations

from imkit.client.library import connect
from tests.behaviour.conftest import Chat
from tests.support import joined, json_client


async def test_a_ban_exception_lets_a_matching_user_past_a_pattern_ban(chat: Chat) -> None:
    op = await json_client(chat.address(0), "opal")
    bar = await json_client(chat.address(1), "Bar")
    baz = await json_client(chat.address(2), "baz")
    await op.request(type="join", room="#club")
    assert (await op.request(type="mode", room="#club", changes="+b", args=["ba*"]))["type"] == "ok"
    assert (await bar.request(type="join", room="#club"))["code"] == "banned_from_room"
    assert (await op.request(type="mode", room="#club", changes="+e", args=["*AR"]))["type"] == "ok"
    assert (await bar.request(type="join", room="#club"))["type"] == "joined"
    assert (await baz.request(type="join", room="#club"))["code"] == "banned_from_room"
    listed = await op.request(type="mode", room="#club", changes="+e")
    assert listed["type"] == "modes" and listed["exceptions"] == ["*AR"]
    assert "bans" not in listed
    bans = await op.request(type="mode", room="#club", changes="+b")
    assert bans["bans"] == ["ba*"]
    await op.request(type="mode", room="#club", changes="-e", args=["*AR"])
    assert (await op.request(type="mode", room="#club", changes="+e"))["exceptions"] == []


async def test_an_invite_exception_passes_invite_only_in_text_mode(chat: Chat) -> None:
    op = await joined(chat.address(0), "opal")
    bob = await json_client(chat.address(1), "bob")
    cy = await json_client(chat.address(2), "cy")
    await op.send("join|#club\n")
    await op.line_matching(r"^#club \* you have joined #club$")
    await op.send("mode|#club|+i\n")
    await op.line_matching(r"^#club \* opal set mode \+i")
    assert (await bob.request(type="join", room="#club"))["code"] == "invite_only"
    await op.send("mode|#club|+I|bo?\n")
    await op.line_matching(r"^#club \* opal set mode \+I bo\?")
    assert (await bob.request(type="join", room="#club"))["type"] == "joined"
    assert (await cy.request(type="join", room="#club"))["code"] == "invite_only"
    await op.send("mode|#club|+I\n")
    assert await op.line_matching(r"invite_exception") == "#club * invite_exception bo?\n"
    await op.send("mode|#club|-I|bo?\n")
    await op.line_matching(r"^#club \* opal set mode -I bo\?")
    await bob.request(type="part", room="#club")
    assert (await bob.request(type="join", room="#club"))["code"] == "invite_only"
    await op.send("mode|#club|+I\n")
    assert await op.line_matching(r"invite exception") == "#club * no invite exceptions\n"
    # a pattern's '?' is a letter with its accents, as the names' keys have them
    zoe = await json_client(chat.address(3), "Zoë")
    await op.send("mode|#club|+I|ZO?\n")
    await op.line_matching(r"^#club \* opal set mode \+I ZO\?")
    assert (await zoe.request(type="join", room="#club"))["type"] == "joined"


async def test_each_list_is_bounded_and_a_bad_mask_is_refused(chat: Chat) -> None:
    op = await json_client(chat.address(0), "opal")
    await op.request(type="join", room="#club")
    masks = [f"user{n}" for n in range(101)]
    too_many = await op.request(type="mode", room="#club", changes="+" + "I" * 101, args=masks)
    assert too_many["code"] == "bad_request"
    assert "at most 100 invite exceptions" in too_many["message"]
    assert (await op.request(type="mode", room="#club", changes="+I"))["invite_exceptions"] == []
    full = await op.request(type="mode", room="#club", changes="+" + "e" * 100, args=masks[:100])
    assert full["type"] == "ok"
    listed = await op.request(type="mode", room="#club", changes="+e")
    assert listed["exceptions"] == masks[:100]  # in the order they were set
    bad = await op.request(type="mode", room="#club", changes="+e", args=["a b"])
    assert bad["code"] == "bad_request"


async def test_the_client_library_lists_each_list(chat: Chat) -> None:
    async with connect(*chat.hostport(0), name="opal") as op:
        await op.join("#club")
        await op.mode("#club", "+beI", "ba*", "*ar", "bar")
        assert await op.bans("#club") == ["ba*"]
        assert await op.ban_exceptions("#club") == ["*ar"]
        assert await op.invite_exceptions("#club") == ["bar"]
        await op.mode("#club", "-e", "*ar")
        assert await op.ban_exceptions("#club") == []
