"""Search (docs/integrations.md, "Search") over real TCP, on one node (its store in
memory: a scan) and on two (the Redis history: the asked node's scan): the lobby's and
a room's messages with every word, newest first, only for who may read them; text mode's
``search|``; the admin socket's ``history`` with a ``query``.

Messages are sent as JSON and their ``ok`` awaited: then they are stored, and a search
on either node sees them."""

from __future__ import annotations

import re

from tests.behaviour.conftest import Chat
from tests.support import LineClient, ask, joined, json_client


async def _say(client: LineClient, text: str, room: str | None = None) -> str:
    request = {"type": "message", "text": text} | ({} if room is None else {"room": room})
    reply = await client.request(**request)
    assert reply["type"] == "ok", reply
    return str(reply["msgid"])


def _texts(page: dict) -> list[str]:  # type: ignore[type-arg]
    assert page["type"] == "history", page
    return [m["text"] for m in page["messages"]]


async def test_search_finds_every_word_newest_first_and_pages_back(chat: Chat) -> None:
    a = await json_client(chat.address(0), "alex")
    b = await json_client(chat.address(1), "bob")
    await _say(a, "Deploy FAILED on prod-1")
    await _say(b, "deploy ok on prod-2")
    await _say(a, "the deployment failed")  # not the word deploy
    for i in range(5):
        await _say(b, f"deploy failed again {i}")
    found = await a.request(type="history", query="failed DEPLOY", limit=3)
    assert _texts(found) == [f"deploy failed again {i}" for i in (2, 3, 4)]
    assert found["more"] is True
    assert all(m["room"] == "#lobby" for m in found["messages"])
    before = found["messages"][0]["msgid"]
    rest = await b.request(type="history", query="failed deploy", limit=10, before=before)
    oldest = ["Deploy FAILED on prod-1", "deploy failed again 0", "deploy failed again 1"]
    assert _texts(rest) == oldest
    assert rest["more"] is False
    assert _texts(await b.request(type="history", query="prod-1")) == ["Deploy FAILED on prod-1"]
    # FTS5's operators are plain words here.
    assert _texts(await b.request(type="history", query="deploy OR nothing")) == []
    empty = await a.request(type="history", query="  ", id="e")
    assert (empty["type"], empty["code"], empty["id"]) == ("error", "bad_request", "e")


async def test_search_keeps_to_the_rooms_a_user_may_read(chat: Chat) -> None:
    a = await json_client(chat.address(0), "alex")
    b = await json_client(chat.address(1), "bob")
    c = await json_client(chat.address(2), "cleo")
    assert (await a.request(type="join", room="#Ops"))["type"] == "joined"
    assert (await b.request(type="join", room="#ops"))["type"] == "joined"
    await _say(a, "disk full on db1", room="#ops")
    await _say(b, "disk full in the lobby")
    in_room = await b.request(type="history", room="#OPS", query="disk full")
    assert _texts(in_room) == ["disk full on db1"]
    assert in_room["messages"][0]["room"] == "#Ops"
    assert _texts(await c.request(type="history", query="disk")) == ["disk full in the lobby"]
    refused = await c.request(type="history", room="#ops", query="disk")
    assert (refused["type"], refused["code"]) == ("error", "not_in_room")
    private = await c.request(type="history", query="disk", **{"with": "alex"})
    assert (private["type"], private["code"]) == ("error", "bad_request")
    # The administrator searches any room.
    server = chat.servers[-1]
    admin = await ask(server, type="history", room="#ops", query="db1")
    assert [m["text"] for m in admin["messages"]] == ["disk full on db1"]
    lobby = await ask(server, type="history", query="full")
    assert [m["text"] for m in lobby["messages"]] == ["disk full in the lobby"]
    bad = await ask(server, type="history", query="--")
    assert (bad["type"], bad["code"]) == ("error", "bad_request")


async def test_a_text_search_answers_its_sender_and_is_never_broadcast(chat: Chat) -> None:
    a = await joined(chat.address(0), "alex")
    b = await joined(chat.address(1), "bob")
    j = await json_client(chat.address(2), "jo")
    await _say(j, "backup done")
    await _say(j, "backup failed twice")
    await a.line_matching("backup failed twice")
    await b.line_matching("backup failed twice")
    await a.send("search|FAILED backup\n")
    line = await a.line()
    assert re.fullmatch(rf"past \S+ \[{re.escape(j.addr)}\]jo:backup failed twice\n", line)
    await a.send("search|#LOBBY|twice\n")  # the lobby named: the same search
    assert await a.line() == line
    for malformed in ["search|\n", "search|#ops\n", "search|#bad room|x\n", "search|!!\n"]:
        await a.send(malformed)
        assert (await a.line()).startswith("error: "), malformed
    await a.send("join|#t\n")
    await a.line_matching(r"^#t \* you have joined")
    await j.request(type="join", room="#t")
    await _say(j, "room backup", room="#t")
    await a.line_matching("room backup")
    await a.send("search|#t|backup\n")
    assert re.fullmatch(r"#t past \S+ \[\S+\]jo:room backup\n", await a.line())
    await b.send("search|#t|backup\n")
    assert (await b.line()).startswith("error: ")  # bob is not in #t
    assert await b.silent()  # and nothing of it was broadcast
