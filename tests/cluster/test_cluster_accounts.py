"""Accounts on a cluster (issue 13): real ``imkit serve --cluster`` nodes on a real
redis-server. An account added on one node works on every node at once: its name is
reserved everywhere, it logs in anywhere (taking over a session elsewhere), messages
kept for it on one node are delivered on login at another, removing it logs its user
out wherever it is, and a conversation between two accounts on two nodes can be read
by both."""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

import anyio

from imkit.hub.members import logged_in_message, reserved_message
from imkit.rules.accounts import conversation_key
from imkit.rules.names import name_key
from tests.support import TIMEOUT, LineClient, run_imkit
from tests.support.cluster import (
    MSGID,
    PASSWORD,
    Cluster,
    Node,
    User,
    add_account,
    admin,
    arrive,
    check_who,
    expect_all,
    log_in,
    offline,
    online,
    rename,
    renamed,
    say,
)

# Cheap hashes: the tests check who may log in, not how long scrypt takes.
FAST_HASH = ("--password-hash-cost", "4")
PAST = r"past \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


async def account_cli(node: Node, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """``imkit account ARGS`` against ``node``: its exit status and output (stdout, or
    stderr when it failed)."""
    result = await anyio.to_thread.run_sync(
        lambda: run_imkit("account", *args, "--port", node.port, env=node.env, stdin=stdin)
    )
    return result.returncode, result.stdout if result.returncode == 0 else result.stderr


async def refused_reserved(user: User, name: str, account: str) -> None:
    """``user`` (not logged in to it) asks for the name ``name`` of the account ``account``."""
    message = reserved_message(account)
    if user.mode == "text":
        await user.client.send(f"rename|{name}\n")
        assert await user.line() == f"error: {message}\n"
    else:
        reply = await user.request(type="rename", name=name, id="rs")
        assert reply == {"type": "error", "id": "rs", "code": "name_reserved", "message": message}
        reply = await user.request(type="hello", name=name, id="hs")
        assert reply == {"type": "error", "id": "hs", "code": "name_reserved", "message": message}


async def send_private(user: User, to: str, text: str) -> dict[str, Any] | None:
    """A private message; the JSON reply (None in text mode, which gets none)."""
    if user.mode == "text":
        await user.client.send(f"to|{to}|{text}\n")
        return None
    return await user.request(type="message", to=to, text=text)


async def kept_for(user: User, account: str, text: str) -> str | None:
    """``user`` sends ``text`` to the offline ``account``, which keeps it; its msgid
    (JSON) or None (text mode, which is told in a line)."""
    reply = await send_private(user, account, text)
    if reply is None:
        told = f"{account} is offline; the message will be delivered when {account} logs in\n"
        assert await user.line() == told
        return None
    assert reply == {"type": "ok", "id": reply["id"], "msgid": reply["msgid"], "queued": True}
    assert MSGID.match(reply["msgid"]), reply
    msgid: str = reply["msgid"]
    return msgid


async def page_with(user: User, other: str, **fields: Any) -> dict[str, Any]:
    """A page of ``user``'s conversation with the account ``other``."""
    request: dict[str, Any] = {"type": "history", "with": other, **fields}
    return await user.request(**request)


def listed(reply: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert reply["type"] == "accounts", reply
    return {row["name"]: row for row in reply["accounts"]}


async def test_an_account_added_on_one_node_is_everyone_s_at_once(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    ann = await arrive(one, "json", [])
    bob = await arrive(two, "text", [ann], name="bob")
    cat = await arrive(two, "json", [ann, bob])
    everyone = [ann, bob, cat]

    assert await add_account(one, "alex") is None
    assert (await admin(two, type="account_add", name="ALEX", password=PASSWORD)) == {
        "type": "error",
        "code": "account_exists",
        "message": "there is an account named alex already",
    }

    # The name is reserved on the other node at once, in both modes and any case.
    await refused_reserved(bob, "alex", "alex")
    await refused_reserved(cat, "Alex", "alex")
    await refused_reserved(ann, "ALEX", "alex")

    # A wrong password, then the right one, on the other node: the user takes the name.
    await bob.client.send(f"login|alex|not-{PASSWORD}\n")
    assert await bob.line() == "error: wrong name or password\n"
    reply = await cat.request(type="login", name="nobody", password=PASSWORD, id="l0")
    assert reply == {
        "type": "error",
        "id": "l0",
        "code": "login_failed",
        "message": "wrong name or password",
    }
    await log_in(cat, "alex", [ann, bob])

    # Logged in, it keeps its account's name.
    reply = await cat.request(type="rename", name="cat", id="r1")
    assert reply == {
        "type": "error",
        "id": "r1",
        "code": "logged_in",
        "message": logged_in_message("alex"),
    }
    # Its messages carry the account everywhere; a guest's carry none.
    msgid = await say(cat, "hello as alex", everyone)
    await say(bob, "hello as a guest", everyone)
    page = await ann.request(type="history", limit=2, id="h")
    assert [(m["from"], m["account"]) for m in page["messages"]] == [
        ("alex", "alex"),
        ("bob", None),
    ]
    assert page["messages"][0]["msgid"] == msgid

    # who, in the chat and for the operator, shows each user's account.
    for user in everyone:
        await check_who(user, everyone)
    for node in (one, two):
        result = await anyio.to_thread.run_sync(node.admin, "who", "--json")
        assert result.returncode == 0, result.stderr
        users = json.loads(result.stdout)
        assert [(u["name"], u["account"], u["node"]) for u in users] == [
            (ann.name, None, one.id),
            ("bob", None, two.id),
            ("alex", "alex", two.id),
        ]
        table = await anyio.to_thread.run_sync(node.admin, "who")
        assert table.returncode == 0, table.stderr
        header, *rows = [line.split() for line in table.stdout.splitlines()]
        assert [row[header.index("ACCOUNT")] for row in rows] == ["-", "-", "alex"], rows
    accounts = listed(await admin(two, type="accounts"))
    assert list(accounts) == ["alex"]
    assert accounts["alex"]["waiting"] == 0 and accounts["alex"]["last_login"] is not None

    # Its own password, changed on one node, is the one every node checks.
    reply = await cat.request(type="passwd", old=PASSWORD, new="second-pw", id="pw")
    assert reply == {"type": "ok", "id": "pw"}
    await bob.client.send(f"login|alex|{PASSWORD}\n")
    assert await bob.line() == "error: wrong name or password\n"
    for user in everyone:
        await user.silent()


async def test_messages_kept_on_one_node_are_delivered_on_login_at_another(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    tom = await arrive(one, "text", [], name="tom")
    joy = await arrive(one, "json", [tom], name="joy")
    assert await add_account(two, "sam") is None

    # Kept for sam, who is offline: each sender is told, JSON with the msgid.
    kept: list[tuple[User, str, str | None]] = []
    for i, sender in enumerate([tom, joy, tom, joy]):
        text = f"waiting {i} | from {sender.name}"
        to = "SAM" if i == 1 else "sam"  # the account is found by its name's key
        kept.append((sender, text, await kept_for(sender, to, text)))
    # An unregistered name that is not online is still nobody.
    await tom.client.send("to|nobody|hi\n")
    assert await tom.line() == "username not exist\n"

    # One that waited longer than --offline-days (30) is neither counted nor delivered.
    old_ms = int((time.time() - 31 * 86_400) * 1000)
    stale = {"name": "tom", "addr": tom.addr, "to": "sam", "text": "too old", "ms": old_ms}
    box = f"{cluster.name}:mail:{name_key('sam')}"
    cluster.redis.client().lpush(box, json.dumps(stale | {"msgid": f"{old_ms * 1000:016d}"}))
    for node in (one, two):
        assert listed(await admin(node, type="accounts"))["sam"]["waiting"] == 4
    status, table = await account_cli(one, "list")
    assert status == 0, table
    header, *rows = [line.split() for line in table.splitlines()]
    assert header[-1] == "WAITING", header  # the last column: LAST LOGIN has a space
    assert [(row[0], row[-1]) for row in rows] == [("sam", "4")], table

    # sam logs in on the other node: its rename, its reply, then what waited, oldest
    # first, each with its original msgid, then what is sent to it from then on.
    sam = await arrive(two, "json", [tom, joy])
    await log_in(sam, "sam", [tom, joy])
    got = [await sam.json() for _ in kept]
    assert [(m["type"], m["from"], m["to"], m["text"], m["account"]) for m in got] == [
        ("message", sender.name, "sam", text, None) for sender, text, _ in kept
    ]
    msgids = [m["msgid"] for m in got]
    assert msgids == sorted(msgids) and len(set(msgids)) == 4
    assert [msgids[1], msgids[3]] == [kept[1][2], kept[3][2]]
    await send_private(tom, "sam", "now live")
    live = await sam.json()
    assert (live["text"], live["to"]) == ("now live", "sam")
    assert live["msgid"] > msgids[-1]

    # Delivered once: the mailbox is empty now, on every node. (Node two takes them out
    # once they are written to sam's socket, in a script of its own: sam may read them
    # before it has run, so the first look may come a moment early.)
    with anyio.fail_after(10):
        while cluster.redis.client().exists(box):
            await anyio.sleep(0.05)
    for node in (one, two):
        assert listed(await admin(node, type="accounts"))["sam"]["waiting"] == 0
    # A text user sees a kept message as the private line with its time.
    await sam.aclose()
    for user in (tom, joy):
        await user.expect(offline(sam))
    await kept_for(joy, "sam", "for the text sam")
    text_sam = await arrive(one, "text", [tom, joy])
    await log_in(text_sam, "sam", [tom, joy])
    line = await text_sam.line()
    assert re.fullmatch(PAST + r"joy say: for the text sam\n", line), line
    for user in (tom, joy, text_sam):
        await user.silent()


async def test_the_mailbox_holds_100_and_forgets_what_is_older_than_offline_days(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    assert await add_account(one, "max") is None
    sender = await arrive(two, "json", [], name="sender")
    text_sender = await arrive(two, "text", [sender], name="texter")
    # One that waited longer than --offline-days (30): as if kept 31 days ago.
    r = cluster.redis.client()
    old_ms = int((time.time() - 31 * 86_400) * 1000)
    stale = {
        "name": "ghost",
        "addr": "127.0.0.1:1",
        "to": "max",
        "text": "too old",
        "ms": old_ms,
        "msgid": f"{old_ms * 1000:016d}",
    }
    r.rpush(f"{cluster.name}:mail:{name_key('max')}", json.dumps(stale))
    assert listed(await admin(one, type="accounts"))["max"]["waiting"] == 0

    # 100 are kept (the stale one is dropped to make room), the 101st is refused.
    ids = [f"m{i}" for i in range(101)]
    for i, rid in enumerate(ids):
        await sender.client.send(
            json.dumps({"type": "message", "to": "max", "text": f"n {i}", "id": rid}) + "\n"
        )
    replies: dict[str, dict[str, Any]] = {}
    with anyio.fail_after(TIMEOUT * 3):
        while len(replies) < 101:
            reply = await sender.json()
            replies[reply["id"]] = reply
    assert all(replies[rid].get("queued") is True for rid in ids[:100]), replies
    message = "max is offline and already has 100 messages waiting; this one was not kept"
    assert replies["m100"] == {
        "type": "error",
        "id": "m100",
        "code": "mailbox_full",
        "message": message,
    }
    await text_sender.client.send("to|max|one more\n")
    assert await text_sender.line() == f"error: {message}\n"
    assert r.llen(f"{cluster.name}:mail:{name_key('max')}") == 100
    assert listed(await admin(two, type="accounts"))["max"]["waiting"] == 100

    # On login (text, the other node): all 100, in order; the stale one never.
    max_user = await arrive(one, "text", [sender, text_sender])
    await log_in(max_user, "max", [sender, text_sender])
    lines = [await max_user.line() for _ in range(100)]
    assert [re.sub(PAST, "", line) for line in lines] == [
        f"sender say: n {i}\n" for i in range(100)
    ]
    await max_user.silent()


async def test_a_login_on_another_node_replaces_the_session(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    watcher = await arrive(one, "json", [])
    await add_account(two, "alex")
    first = await arrive(one, "json", [watcher])
    await log_in(first, "alex", [watcher])
    second = await arrive(two, "text", [watcher, first])
    old_addr = second.name

    # The newer login wins: the older session is told why and closed; everyone sees it
    # go, then the new one take the name.
    await second.client.send(f"login|alex|{PASSWORD}\n")
    await second.expect(offline(first))
    assert await second.line() == "you have logged in as alex\n"
    bye = await first.json()
    assert bye == {
        "type": "bye",
        "reason": "replaced",
        "message": "you logged in to your account from somewhere else",
    }
    assert await first.client.eof()
    await watcher.expect(offline(first))
    second.name = second.account = "alex"
    await watcher.expect(renamed(second, old_addr, "alex"))
    await check_who(watcher, [watcher, second])
    stats = json.loads((await anyio.to_thread.run_sync(one.admin, "stats", "--json")).stdout)
    assert stats["replaced"] == 1 and stats["cluster"]["accounts"] == 1, stats

    # Logging in again where it is already: nothing to replace.
    await second.client.send(f"login|alex|{PASSWORD}\n")
    assert await second.line() == "you have logged in as alex\n"
    for user in (watcher, second):
        await user.silent()


async def test_removing_an_account_on_one_node_logs_its_user_out_on_another(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    watcher = await arrive(two, "json", [])
    await add_account(one, "alex")
    await add_account(one, "bob")
    alex = await arrive(one, "text", [watcher])
    await log_in(alex, "alex", [watcher])
    await kept_for(watcher, "bob", "one")
    await kept_for(watcher, "bob", "two")

    removed = await account_cli(two, "remove", "ALEX")
    assert removed == (0, "removed account alex; 1 user logged out, 0 waiting messages discarded\n")
    assert await alex.line() == "your account was removed by an administrator\n"
    assert await alex.client.eof()
    await watcher.expect(offline(alex))
    # Its waiting messages go with it; the name is anyone's again.
    reply = await admin(one, type="account_remove", name="bob")
    assert reply == {"type": "ok", "name": "bob", "logged_out": 0, "discarded": 2}
    assert cluster.redis.client().exists(f"{cluster.name}:mail:{name_key('bob')}") == 0
    reply = await admin(two, type="account_remove", name="bob")
    assert reply == {
        "type": "error",
        "code": "no_such_account",
        "message": "no account named 'bob'",
    }
    assert listed(await admin(one, type="accounts")) == {}
    await rename(watcher, "alex", [])
    refused = await send_private(watcher, "bob", "nobody now")
    assert refused is not None and refused["code"] == "no_such_user", refused
    await watcher.silent()


async def test_removing_an_account_deletes_what_it_sent_that_still_waits(
    cluster: Cluster,
) -> None:
    """Issue 25, item 7: mail from a removed account is not delivered later under the
    name of whoever is given the account's name next."""
    one, two = cluster.start_nodes(2, *FAST_HASH)
    for name in ("alice", "bob"):
        await add_account(one, name)
    alice = await arrive(one, "json", [])
    await log_in(alice, "alice", [])
    await kept_for(alice, "bob", "from the old alice")
    guest = await arrive(two, "json", [alice])
    await kept_for(guest, "bob", "from a guest")
    await kept_for(alice, "bob", "from the old alice again")

    reply = await admin(two, type="account_remove", name="alice")
    assert reply == {"type": "ok", "name": "alice", "logged_out": 1, "discarded": 0}
    await guest.expect(offline(alice))
    await add_account(two, "alice", password="someone-else")
    bob = await arrive(two, "json", [guest])
    await log_in(bob, "bob", [guest])
    kept = await bob.json()
    assert (kept["type"], kept["text"], kept["account"]) == ("message", "from a guest", None)
    await bob.silent()
    page = await page_with(bob, "alice")
    assert page["messages"] == []


async def test_an_account_made_on_one_node_renames_the_guest_holding_it_on_another(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    carol = await arrive(one, "text", [], name="carol")
    dave = await arrive(one, "json", [carol], name="dave")
    watcher = await arrive(two, "json", [carol, dave])

    # The guest gets its default name and is told why; the others see a rename.
    added = await account_cli(two, "add", "Carol", "--password-stdin", stdin=PASSWORD + "\n")
    assert added == (
        0,
        f"added account Carol; the guest who was using the name is now {carol.addr}\n",
    )
    assert await carol.line() == (
        f"the name carol is now reserved for an account; you are now {carol.addr}\n"
    )
    for user in (dave, watcher):
        await user.expect(renamed(carol, "carol", carol.addr))
    carol.name = carol.addr
    assert await add_account(two, "DAVE") == dave.addr
    change = {"type": "rename", "old": "dave", "new": dave.addr, "addr": dave.addr}
    assert await dave.json() == {**change, "reason": "reserved"}
    assert await watcher.json() == change
    dave.name = dave.addr
    await check_who(watcher, [carol, dave, watcher])

    # A guest holding the name of an account it could not have taken (an account made
    # behind the nodes' backs, as a race would leave it): a login to that account takes
    # the name from it, as the making of an account does.
    r = cluster.redis.client()
    await rename(watcher, "erin", [carol, dave])
    record = json.loads(r.hget(f"{cluster.name}:accounts", name_key("carol")) or "{}")
    r.hset(f"{cluster.name}:accounts", name_key("erin"), json.dumps(record | {"name": "erin"}))
    erin = await arrive(one, "json", [carol, dave, watcher])
    old = erin.name
    await erin.client.send(
        json.dumps({"type": "login", "name": "erin", "password": PASSWORD, "id": "l"}) + "\n"
    )
    evicted = {"type": "rename", "old": "erin", "new": watcher.addr, "addr": watcher.addr}
    assert await watcher.json() == {**evicted, "reason": "reserved"}
    watcher.name = watcher.addr
    for user in (dave, erin):
        assert await user.json() == evicted
    erin.name = erin.account = "erin"
    for user in (dave, watcher, erin):
        await user.expect(renamed(erin, old, "erin"))
    assert await erin.json() == {"type": "ok", "id": "l", "name": "erin", "account": "erin"}
    await check_who(dave, [carol, dave, watcher, erin])
    for user in (carol, dave, erin, watcher):
        await user.silent()


async def test_two_accounts_on_two_nodes_read_their_conversation(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    for name in ("alex", "sam", "eve"):
        await add_account(one, name)
    alex = await arrive(one, "json", [])
    await log_in(alex, "alex", [])
    guest = await arrive(two, "json", [alex])

    # alex writes to sam while sam is offline (kept), then to the guest (not kept).
    first = await kept_for(alex, "sam", "are you there?")
    reply = await send_private(alex, guest.name, "to a guest")
    assert reply is not None and reply["type"] == "ok", reply
    assert (await guest.json())["text"] == "to a guest"
    sam = await arrive(two, "json", [alex, guest])
    await log_in(sam, "sam", [alex, guest])
    assert (await sam.json())["msgid"] == first  # the kept one
    ids = [first]
    for sender, to, text in [(sam, alex, "here now"), (alex, sam, "good"), (sam, alex, "bye")]:
        reply = await send_private(sender, to.name, text)
        assert reply is not None and reply["type"] == "ok", reply
        got = await to.json()
        assert (got["from"], got["account"], got["msgid"]) == (
            sender.name,
            sender.name,
            reply["msgid"],
        )
        ids.append(reply["msgid"])

    # Both parties read the same page, on either node, with "with" in any case.
    expected = [
        ("alex", "sam", "are you there?"),
        ("sam", "alex", "here now"),
        ("alex", "sam", "good"),
        ("sam", "alex", "bye"),
    ]
    pages = [
        await page_with(alex, "SAM", limit=10, id="c1"),
        await page_with(sam, "alex", limit=10, id="c2"),
    ]
    for page in pages:
        assert page["type"] == "history" and page["more"] is False, page
        assert [(m["from"], m["to"], m["text"]) for m in page["messages"]] == expected
        assert [m["msgid"] for m in page["messages"]] == ids
        assert [m["account"] for m in page["messages"]] == ["alex", "sam", "alex", "sam"]
    # Paged like history: the 2 newest, then the 2 before them.
    newest = await page_with(alex, "sam", limit=2, id="c3")
    assert [m["msgid"] for m in newest["messages"]] == ids[2:] and newest["more"] is True
    older = await page_with(alex, "sam", limit=2, id="c4", before=ids[2])
    assert [m["msgid"] for m in older["messages"]] == ids[:2] and older["more"] is False

    # Only the two parties: another account sees its own (empty) conversation with sam,
    # a guest none at all, and nobody a conversation with a name that is no account.
    eve = await arrive(one, "json", [alex, guest, sam])
    await log_in(eve, "eve", [alex, guest, sam])
    page = await page_with(eve, "sam", id="c5")
    assert page == {"type": "history", "id": "c5", "messages": [], "more": False}
    page = await page_with(guest, "sam", id="c6")
    assert page["type"] == "error" and page["code"] == "login_required", page
    page = await page_with(alex, "nobody", id="c7")
    assert page["type"] == "error" and page["code"] == "no_such_user", page

    # The conversation goes with either account: a new sam must not read it.
    r = cluster.redis.client()
    pair = f"{cluster.name}:conv:{conversation_key(name_key('alex'), name_key('sam'))}"
    assert r.xlen(pair) == 4
    reply = await admin(one, type="account_remove", name="sam")
    assert reply == {"type": "ok", "name": "sam", "logged_out": 1, "discarded": 0}
    assert (await sam.json())["reason"] == "account_removed"
    for user in (alex, guest, eve):
        await user.expect(offline(sam))
    assert r.exists(pair) == 0
    assert r.hgetall(f"{cluster.name}:convs:{name_key('alex')}") == {}
    await add_account(two, "sam")
    page = await page_with(alex, "sam", id="c8")
    assert page == {"type": "history", "id": "c8", "messages": [], "more": False}
    for user in (alex, eve, guest):
        await user.silent()


async def test_accounts_only_on_two_nodes(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH, "--accounts-only")
    for name in ("alex", "bea"):
        await add_account(two, name)

    # Not online until logged in: it receives nothing and may do nothing else.
    alex = await LineClient.connect(one.address)
    await alex.send("who\n")
    assert await alex.line() == (
        "error: log in first (text: login|NAME|PASSWORD; JSON: a login request)\n"
    )
    await alex.send(f"login|alex|wrong-{PASSWORD}\n")
    assert await alex.line() == "error: wrong name or password\n"
    await alex.send(f"login|alex|{PASSWORD}\n")
    assert await alex.line() == f"[{alex.addr}]alex:user is online\n"
    assert await alex.line() == "you have logged in as alex\n"
    await alex.send("who\n")
    assert await alex.line() == f"[{alex.addr}]alex:online...\n"

    # A JSON hello that logs in, on the other node: welcome with the account.
    bea = await LineClient.connect(two.address)
    hello = {"type": "hello", "id": "h", "login": {"name": "bea", "password": PASSWORD}}
    await bea.send(json.dumps(hello) + "\n")
    presence = {"type": "presence", "name": "bea", "addr": bea.addr, "status": "online"}
    assert await bea.json() == presence
    welcome = await bea.json()
    assert welcome == {
        "type": "welcome",
        "id": "h",
        "name": "bea",
        "addr": bea.addr,
        "server": welcome["server"],
        "account": "bea",
        "features": ["history", "accounts", "rooms", "search", "edit", "cluster"],
        "v": 1,
    }
    assert await alex.line() == f"[{bea.addr}]bea:user is online\n"
    await alex.send("to|bea|hi bea\n")
    got = await bea.json()
    assert (got["from"], got["account"], got["text"]) == ("alex", "alex", "hi bea")

    # A second login to alex, on the other node, replaces the first session.
    again = await LineClient.connect(two.address)
    await again.send(f"login|alex|{PASSWORD}\n")
    assert await alex.line() == "you logged in to your account from somewhere else\n"
    assert await alex.eof()
    assert await again.line() == f"[{again.addr}]alex:user is online\n"
    assert await again.line() == "you have logged in as alex\n"
    assert await bea.json() == {**presence, "name": "alex", "addr": alex.addr, "status": "offline"}
    assert await bea.json() == {**presence, "name": "alex", "addr": again.addr}
    who = await bea.request(type="who", id="w")
    assert who["users"] == [
        {"name": "bea", "addr": bea.addr, "account": "bea"},
        {"name": "alex", "addr": again.addr, "account": "alex"},
    ]
    for client in (bea, again):
        assert await client.silent()


async def test_logins_and_account_changes_are_unavailable_without_redis(
    cluster: Cluster,
) -> None:
    (one,) = cluster.start_nodes(1, *FAST_HASH)
    await add_account(one, "alex")
    user = await arrive(one, "json", [])
    cluster.redis.stop()
    reply = await user.request(type="login", name="alex", password=PASSWORD, id="l")
    assert reply["code"] == "unavailable", reply
    assert reply["message"].startswith("cannot log in now: "), reply
    for request in (
        {"type": "account_add", "name": "sam", "password": PASSWORD},
        {"type": "account_passwd", "name": "alex", "password": PASSWORD},
        {"type": "account_remove", "name": "alex"},
        {"type": "accounts"},
    ):
        reply = await admin(one, **request)
        assert (reply["type"], reply["code"]) == ("error", "unavailable"), (request, reply)
    one.wait_log("cluster: cannot reach Redis")
    assert one.log_count("cannot reach Redis") == 1


async def test_a_paused_node_s_session_is_replaced_by_a_login_meanwhile(
    cluster: Cluster,
) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    await add_account(two, "alex")
    watcher = await arrive(two, "json", [])
    first = await arrive(one, "text", [watcher])
    await log_in(first, "alex", [watcher])
    guest = await arrive(one, "text", [watcher, first], name="zed")

    # Node one is declared dead; meanwhile alex logs in on node two, and zed, free
    # now, becomes an account's name.
    one.signal(signal.SIGSTOP)
    try:
        await expect_all(watcher, [offline(first), offline(guest)], timeout=TIMEOUT * 2)
        second = await arrive(two, "json", [watcher])
        await log_in(second, "alex", [watcher])
        await add_account(two, "zed")
    finally:
        one.signal(signal.SIGCONT)
    # When node one comes back, its alex is not alex any more: told, and closed; its
    # zed comes back under its default name, and is told.
    with anyio.fail_after(TIMEOUT * 2):
        lines: list[str] = []
        while not lines or lines[-1] != "you logged in to your account from somewhere else\n":
            lines.append(await first.line(TIMEOUT * 2))
    assert await first.client.eof()
    conflict = (
        "your name zed was taken while your server was cut off from the chat;"
        f" you are now {guest.addr}\n"
    )
    with anyio.fail_after(TIMEOUT * 2):
        while await guest.line(TIMEOUT * 2) != conflict:
            pass
    guest.name = guest.addr
    await watcher.expect(online(guest))
    await check_who(watcher, [watcher, second, guest])
    assert one.log_count("replaced by a login to its account") == 1
    await watcher.silent()


async def test_an_account_s_mute_and_ban_hold_on_every_node(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, *FAST_HASH)
    await add_account(one, "alex")
    alex = await arrive(two, "text", [])
    await log_in(alex, "alex", [])

    # Muted through node one: kept with the account in Redis, and in force on node two.
    muted = await anyio.to_thread.run_sync(one.admin, "mute", "alex", "--for", "1h")
    assert muted.returncode == 0, muted.stderr
    assert muted.stdout.endswith("Z, also after reconnects (an account)\n"), muted.stdout
    with anyio.fail_after(TIMEOUT):  # the mute reaches node two through Redis
        while True:
            await alex.client.send("hi\n")
            line = await alex.line()
            if line.startswith("error: you are muted (until "):
                break
            assert line == f"[{alex.addr}]alex:hi\n", line
    # Logged in again elsewhere, it is muted at once: the mute is the account's.
    again = await arrive(one, "text", [alex])
    await alex.aclose()
    await again.expect(offline(alex))
    await log_in(again, "alex", [])
    await again.client.send("hi\n")
    assert (await again.line()).startswith("error: you are muted (until ")
    accounts = listed(await admin(two, type="accounts"))
    assert accounts["alex"]["last_login"] is not None  # saving the mute kept it

    # Banned through node two: its user on node one goes, and it cannot log in anywhere.
    banned = await anyio.to_thread.run_sync(two.admin, "ban", "alex", "--reason", "spam")
    assert banned.returncode == 0, banned.stderr
    assert "1 user removed" in banned.stdout, banned.stdout
    assert await again.line() == "you are banned: spam\n"
    assert await again.client.eof()
    for node in (one, two):
        client = await LineClient.connect(node.address)
        await client.send(f"login|alex|{PASSWORD}\n")
        assert await client.line_matching("banned") == "you are banned: spam\n"
        assert await client.eof()
