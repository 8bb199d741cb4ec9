"""Deleting and editing a message (docs/integrations.md, "Delete and edit") over real
TCP, JSON and text clients, on one node and on two (clients alternate between the
nodes: the author, the watchers and the history readers are on different ones)."""

from __future__ import annotations

import json
import re
from typing import Any

from imkit.operator import answers
from tests.behaviour.conftest import Chat
from tests.support import LineClient, joined, json_client
from tests.support.names import _add_account


async def _account(chat: Chat, k: int, name: str) -> LineClient:
    """A JSON client on the k-th address, logged in to the new account ``name``."""
    assert (await _add_account(chat.servers[0], name, "pw"))["type"] == "ok"
    client = await json_client(chat.address(k), f"g{k}")
    reply = await client.request(type="login", name=name, password="pw")
    assert reply["type"] == "ok" and reply["account"] == name
    return client


async def _history(client: LineClient, **fields: Any) -> list[dict[str, Any]]:
    page = await client.request(type="history", **fields)
    assert page["type"] == "history", page
    return list(page["messages"])


async def _admin(chat: Chat, request: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = await answers.answer(
        chat.servers[0], json.dumps(request).encode(), by="test"
    )
    return reply


async def test_an_author_deletes_its_lobby_message_everyone_is_told_history_forgets(
    chat: Chat,
) -> None:
    alex = await _account(chat, 0, "alex")
    watcher = await json_client(chat.address(1), "watcher")
    text = await joined(chat.address(2), "tee")
    kept = await alex.request(type="message", text="kept")
    sent = await alex.request(type="message", text="oops, a password")
    msgid = sent["msgid"]
    assert (await watcher.json_of_type("message"))["msgid"] == kept["msgid"]
    assert (await watcher.json_of_type("message"))["msgid"] == msgid
    reply = await alex.request(type="delete", msgid=msgid)
    assert reply == {"type": "ok", "id": reply["id"], "msgid": msgid}
    told = await watcher.json_of_type("deleted")
    assert told == {"type": "deleted", "msgid": msgid, "room": "#lobby", "by": "alex"}
    line = await text.line_matching(r"deleted message")
    assert line == f"#lobby * alex deleted message {msgid}\n"
    for reader in (alex, watcher):  # history on both nodes: the text is gone
        texts = [m["text"] for m in await _history(reader)]
        assert texts == ["kept"]
    again = await alex.request(type="delete", msgid=msgid)
    assert again["code"] == "no_such_message"


async def test_an_author_edits_its_message_everyone_is_told_history_shows_it(
    chat: Chat,
) -> None:
    alex = await _account(chat, 0, "alex")
    watcher = await json_client(chat.address(1), "watcher")
    text = await joined(chat.address(2), "tee")
    sent = await alex.request(type="message", text="deploy faild")
    msgid = sent["msgid"]
    reply = await alex.request(type="edit", msgid=msgid, text="deploy failed")
    assert reply == {"type": "ok", "id": reply["id"], "msgid": msgid}
    told = await watcher.json_of_type("edited")
    assert told["msgid"] == msgid and told["text"] == "deploy failed"
    assert told["room"] == "#lobby" and told["by"] == "alex" and told["edited"]
    line = await text.line_matching(r"edited message")
    assert line == f"#lobby * alex edited message {msgid}: deploy failed\n"
    for reader in (watcher, alex):
        [message] = await _history(reader)
        assert message["msgid"] == msgid and message["text"] == "deploy failed"
        assert message["edited"] >= message["time"]
    await text.send("history|5\n")  # a text client's history marks it edited
    past = await text.line_matching(r"^past ")
    assert re.fullmatch(r"past \S+ edited \[[^]]+\]alex:deploy failed\n", past), past


async def test_guests_others_and_unknown_msgids_change_nothing(chat: Chat) -> None:
    alex = await _account(chat, 0, "alex")
    bob = await _account(chat, 1, "bob")
    guest = await json_client(chat.address(2), "guest")
    mine = await alex.request(type="message", text="alex's")
    guests = await guest.request(type="message", text="guest's")
    codes = [
        (await bob.request(type="delete", msgid=mine["msgid"]))["code"],
        (await bob.request(type="edit", msgid=mine["msgid"], text="x"))["code"],
        (await guest.request(type="delete", msgid=guests["msgid"]))["code"],
        (await guest.request(type="edit", msgid=guests["msgid"], text="x"))["code"],
        (await alex.request(type="delete", msgid="1000000000000001"))["code"],
        (await alex.request(type="delete", msgid="nope"))["code"],
        (await alex.request(type="edit", msgid=mine["msgid"], text=""))["code"],
        (await alex.request(type="edit", msgid=mine["msgid"], text="a\nb"))["code"],
        (await alex.request(type="edit", msgid=mine["msgid"]))["code"],
    ]
    assert codes == [
        "not_allowed",
        "not_allowed",
        "not_allowed",
        "not_allowed",
        "no_such_message",
        "bad_request",
        "invalid_message",
        "invalid_message",
        "bad_request",
    ]
    texts = [m["text"] for m in await _history(bob)]
    assert texts == ["alex's", "guest's"]
    assert await guest.silent()  # no deleted or edited event went out


async def test_room_messages_only_members_see_and_operators_delete(chat: Chat) -> None:
    op = await json_client(chat.address(0), "op")
    alex = await _account(chat, 1, "alex")
    outsider = await _account(chat, 2, "outsider")
    assert (await op.request(type="join", room="#dev"))["operator"] is True
    assert (await alex.request(type="join", room="#dev"))["type"] == "joined"
    first = await alex.request(type="message", room="#dev", text="first")
    second = await alex.request(type="message", room="#dev", text="second")
    # Not a member: the room's messages do not exist for it.
    hidden = await outsider.request(type="delete", msgid=first["msgid"])
    assert hidden["code"] == "no_such_message"
    # The author edits; the operator may not, but may delete.
    edited = await alex.request(type="edit", msgid=first["msgid"], text="first!")
    assert edited["type"] == "ok"
    told = await op.json_of_type("edited")
    assert told["room"] == "#dev" and told["text"] == "first!"
    refused = await op.request(type="edit", msgid=second["msgid"], text="mine now")
    assert refused["code"] == "not_allowed"
    deleted = await op.request(type="delete", msgid=second["msgid"])
    assert deleted["type"] == "ok"
    told = await alex.json_of_type("deleted")
    assert told == {"type": "deleted", "msgid": second["msgid"], "room": "#dev", "by": "op"}
    for reader in (op, alex):
        page = await _history(reader, room="#dev")
        assert [(m["text"], "edited" in m) for m in page] == [("first!", True)]
    assert await outsider.silent()


async def test_text_clients_delete_and_edit_by_msgid(chat: Chat) -> None:
    assert (await _add_account(chat.servers[0], "tee", "pw"))["type"] == "ok"
    tee = await joined(chat.address(0))
    await tee.send("login|tee|pw\n")
    await tee.line_matching("^you have logged in as tee")
    watcher = await json_client(chat.address(1), "watcher")
    await tee.send("one\n")
    await tee.send("two\n")
    one = await watcher.json_of_type("message")
    two = await watcher.json_of_type("message")
    await tee.send(f"edit|{one['msgid']}|one, edited|with a bar\n")
    assert await tee.line_matching("edited message") == (
        f"#lobby * tee edited message {one['msgid']}: one, edited|with a bar\n"
    )
    assert (await watcher.json_of_type("edited"))["text"] == "one, edited|with a bar"
    await tee.send(f"delete|{two['msgid']}\n")
    assert await tee.line_matching("deleted message") == (
        f"#lobby * tee deleted message {two['msgid']}\n"
    )
    assert (await watcher.json_of_type("deleted"))["msgid"] == two["msgid"]
    await tee.send("delete|12\n")
    assert await tee.line_matching("^error") == "error: use delete|MSGID\n"
    await tee.send("delete|1000000000000001\n")
    assert await tee.line_matching("^error") == (
        "error: there is no message 1000000000000001 that you can see\n"
    )
    texts = [m["text"] for m in await _history(watcher)]
    assert texts == ["one, edited|with a bar"]


async def test_an_administrators_delete_is_told_to_the_users(chat: Chat) -> None:
    alex = await json_client(chat.address(0), "alex")
    watcher = await json_client(chat.address(1), "watcher")
    text = await joined(chat.address(2), "tee")
    assert (await alex.request(type="join", room="#dev"))["type"] == "joined"
    assert (await watcher.request(type="join", room="#dev"))["type"] == "joined"
    lobby = await alex.request(type="message", text="in the lobby")
    room = await alex.request(type="message", room="#dev", text="in the room")
    reply = await _admin(chat, {"type": "history_delete", "msgids": [lobby["msgid"]]})
    assert reply == {"type": "ok", "deleted": 1}
    told = await watcher.json_of_type("deleted")
    assert told == {"type": "deleted", "msgid": lobby["msgid"], "room": "#lobby", "by": None}
    assert await text.line_matching("deleted message") == (
        f"#lobby * an administrator deleted message {lobby['msgid']}\n"
    )
    reply = await _admin(chat, {"type": "history_delete", "msgids": [room["msgid"]]})
    assert reply == {"type": "ok", "deleted": 1}
    told = await watcher.json_of_type("deleted")
    assert told == {"type": "deleted", "msgid": room["msgid"], "room": "#dev", "by": None}
    assert await _history(watcher, room="#dev") == []
    assert await text.silent()  # not in #dev: not told of its message


async def test_the_author_deletes_and_edits_from_another_session_and_node(chat: Chat) -> None:
    first = await _account(chat, 0, "alex")
    watcher = await json_client(chat.address(0), "watcher")
    sent = await first.request(type="message", text="said on the first node")
    gone = await first.request(type="message", text="to be deleted")
    later = await json_client(chat.address(1), "later")  # the other node, on two
    reply = await later.request(type="login", name="alex", password="pw")
    assert reply["type"] == "ok"
    edited = await later.request(type="edit", msgid=sent["msgid"], text="edited elsewhere")
    assert edited["type"] == "ok"
    wrong = await later.request(type="delete", msgid=gone["msgid"], room="#dev")
    assert wrong["code"] == "no_such_message"  # it is the lobby's, not #dev's
    deleted = await later.request(type="delete", msgid=gone["msgid"], room="#lobby", reason="x")
    assert deleted["type"] == "ok"
    assert (await watcher.json_of_type("edited"))["text"] == "edited elsewhere"
    told = await watcher.json_of_type("deleted")
    assert (told["msgid"], told["by"], told["reason"]) == (gone["msgid"], "alex", "x")
    for reader in (watcher, later):
        assert [m["text"] for m in await _history(reader)] == ["edited elsewhere"]
