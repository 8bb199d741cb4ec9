"""Accounts on one server (issue 13) over real TCP: reserved names in both modes, login
and what others see, failed logins and their limit, takeover, --accounts-only, private
messages kept for an offline account (across a kill -9 too, once, in order, within the
limit and --offline-days), private history between accounts, password changes, and
an event loop that stays responsive while passwords are hashed. The cluster's side is
in tests/cluster/test_cluster_accounts.py.

Here the tests that need an in-process server on loopback; the others are in
process/test_accounts.py, unit/test_accounts.py."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from imkit.operator import account_requests
from imkit.rules.names import name_key
from imkit.server import Server
from tests.support import (
    Clock,
    LineClient,
    ask,
    client_from,
    joined,
    run_server,
    split_addr,
)
from tests.support.accounts import add, config, json_hello


@pytest.fixture
def server(accounts_server: Server) -> Server:
    """This file's server: tests/conftest.py's accounts_server."""
    return accounts_server


# -------------------------------------------------------------------- reserved names


async def test_a_reserved_name_is_refused_in_both_modes(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex")
    text = await joined(address)
    await text.send("rename|ALEX\n")
    line = await text.line()
    assert line.startswith("error: the name alex belongs to an account")
    assert "login|alex|PASSWORD" in line
    client, reply = await json_hello(address, name="Alex")
    assert reply["type"] == "error" and reply["code"] == "name_reserved"
    reply = await client.request(type="rename", name="alex")
    assert reply["code"] == "name_reserved"
    who = await client.request(type="who")
    assert all(name_key(u["name"]) != name_key("alex") for u in who["users"])


async def test_adding_an_account_renames_the_guest_holding_the_name(server: Server) -> None:
    address = server.addresses[0]
    guest = await joined(address, "sam")
    observer, _ = await json_hello(address)
    text_observer = await joined(address)
    json_guest, _ = await json_hello(address, name="kim")
    reply = await add(server, "Sam")
    assert reply["renamed"] == guest.addr
    assert await guest.line_matching("reserved") == (
        f"the name sam is now reserved for an account; you are now {guest.addr}\n"
    )
    event = await observer.json_of_type("rename")  # kim's own rename came first
    event = await observer.json_of_type("rename")  # everyone else: a rename, no reason
    assert event == {"type": "rename", "old": "sam", "new": guest.addr, "addr": guest.addr}
    await add(server, "kim")
    assert (await json_guest.json_of_type("rename"))["old"] == "sam"  # another's: no reason
    told = await json_guest.json_of_type("rename")
    assert (told["old"], told["new"], told["reason"]) == ("kim", json_guest.addr, "reserved")
    assert (
        await text_observer.line_matching("online")
        == f"[{json_guest.addr}]{json_guest.addr}:user is online\n"
    )
    assert await text_observer.silent()  # a text user is not told of others' renames
    reply = await ask(server, type="account_add", name="SAM", password="x")
    assert reply["code"] == "account_exists"
    reply = await ask(server, type="account_add", name="a b", password="x")
    assert reply["code"] == "invalid_name"
    reply = await ask(server, type="account_add", name="ok", password="")
    assert reply["code"] == "bad_request"


# ----------------------------------------------------------------------------- login


async def test_lines_sent_with_a_login_are_handled_in_order_around_it(server: Server) -> None:
    # One write: the reader's loop callback handles the first line, hands the login to
    # the reader task (it waits for the hash) and the lines after it wait their turn.
    address = server.addresses[0]
    await add(server, "Alex", "pw1")
    observer, _ = await json_hello(address)
    user = await joined(address)
    await user.send(f"before\nlogin|alex|pw1\nafter\n{'x' * 3}\n")
    assert await user.line() == f"[{user.addr}]{user.addr}:before\n"
    assert await user.line() == "you have logged in as Alex\n"
    assert await user.line() == f"[{user.addr}]Alex:after\n"
    assert await user.line() == f"[{user.addr}]Alex:xxx\n"
    seen = [await observer.json_of_type("message") for _ in range(3)]
    assert [(m["from"], m["account"], m["text"]) for m in seen] == [
        (user.addr, None, "before"),
        ("Alex", "Alex", "after"),
        ("Alex", "Alex", "xxx"),
    ]


async def test_login_in_json_and_in_a_hello(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    client, welcome = await json_hello(address, login={"name": "ALEX", "password": "pw"})
    assert welcome["type"] == "welcome"
    assert (welcome["name"], welcome["account"]) == ("alex", "alex")
    other, _ = await json_hello(address)
    reply = await other.request(type="login", name="alex", password="wrong")
    assert reply["code"] == "login_failed" and reply["message"] == "wrong name or password"
    reply = await other.request(type="login", name="nobody", password="pw")
    assert reply["code"] == "login_failed"  # the same answer: names are not revealed
    reply = await other.request(type="login", name="alex")
    assert reply["code"] == "bad_request"
    _, refused = await json_hello(address, login={"name": "alex", "password": "nope"})
    assert refused["type"] == "error" and refused["code"] == "login_failed"


async def test_malformed_login_lines_are_errors_never_messages(server: Server) -> None:
    address = server.addresses[0]
    listener = await joined(address)
    user = await joined(address)
    await listener.line()  # user's online line
    for line in ("login|", "login|alex", "login|alex|", "passwd|only", "passwd||x"):
        await user.send(line + "\n")
        assert (await user.line()).startswith("error: use ")
    assert await listener.silent()


async def test_four_wrong_passwords_mean_too_many_attempts(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "right")
    client = await client_from(address, "127.0.0.2")
    for _ in range(3):
        await client.send("login|alex|wrong\n")
        assert await client.line() == "error: wrong name or password\n"
    await client.send("login|alex|right\n")  # refused even when right, until the minute ends
    assert (await client.line()).startswith("error: too many failed logins; try again in ")
    elsewhere = await client_from(address, "127.0.0.3")
    await elsewhere.send("login|alex|right\n")
    assert await elsewhere.line() == "you have logged in as alex\n"


async def test_a_second_login_replaces_the_first(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    first, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    second = await joined(address)
    await second.send("login|alex|pw\n")
    bye = await first.json_of_type("bye")
    assert bye["reason"] == "replaced"
    assert await first.eof()
    assert await second.line_matching("logged in") == "you have logged in as alex\n"
    users = await ask(server, type="who")
    assert [(u["name"], u["addr"]) for u in users["users"]] == [("alex", second.addr)]
    assert server.hub.stats.replaced == 1


async def test_a_user_changes_its_own_password(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "old")
    user = await joined(address)
    await user.send("passwd|old|new\n")
    assert (await user.line()).startswith("error: log in first")
    await user.send("login|alex|old\n")
    await user.line()
    await user.send("passwd|wrong|new\n")
    assert await user.line() == "error: wrong name or password\n"
    await user.send("passwd|old|new\n")
    assert await user.line() == "your password has been changed\n"
    client, reply = await json_hello(address, login={"name": "alex", "password": "old"})
    assert reply["code"] == "login_failed"
    reply = await client.request(type="login", name="alex", password="new")
    assert reply == {"type": "ok", "id": reply["id"], "name": "alex", "account": "alex"}
    reply = await client.request(type="passwd", old="new", new="newer")
    assert reply == {"type": "ok", "id": reply["id"]}
    reply = await ask(server, type="account_passwd", name="ALEX", password="reset")
    assert reply == {"type": "ok", "name": "alex"}
    reply = await ask(server, type="account_passwd", name="nobody", password="reset")
    assert reply["code"] == "no_such_account"


async def test_removing_an_account_logs_its_user_out(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    user, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    sender, _ = await json_hello(address)
    await user.request(type="ping")
    await ask(server, type="account_remove", name="alex")  # nothing waits yet
    bye = await user.json_of_type("bye")
    assert bye["reason"] == "account_removed"
    assert await user.eof()
    reply = await sender.request(type="message", to="alex", text="anyone?")
    assert reply["code"] == "no_such_user"  # no account any more: no mailbox
    reply = await ask(server, type="account_remove", name="alex")
    assert reply["code"] == "no_such_account"


# ------------------------------------------------------------------ --accounts-only


async def test_accounts_only_requires_a_login_first(short_dir: Path) -> None:
    cfg = config(short_dir, accounts_only=True, auth_timeout=1.5)
    async with run_server(cfg) as server:
        address = server.addresses[0]
        await add(server, "alex", "pw")
        early = await LineClient.connect(address)
        await early.send("who\n")
        assert (await early.line()).startswith("error: log in first")
        await early.send("hello\n")
        assert (await early.line()).startswith("error: log in first")
        await early.send("login|alex|pw\n")
        assert await early.line() == f"[{early.addr}]alex:user is online\n"
        assert await early.line() == "you have logged in as alex\n"
        late = await LineClient.connect(address)
        assert await late.line(timeout=5) == "no login within 1.5 seconds\n"
        assert await late.eof()
        assert server.hub.stats.refused_unauthorized == 1
        client = await LineClient.connect(address)
        reply = await client.request(type="hello")
        assert reply["code"] == "login_required"
        reply = await client.request(type="login", name="alex", password="pw")
        assert reply["account"] == "alex"
        users = await ask(server, type="who")
        assert [u["addr"] for u in users["users"]] == [client.addr]


async def test_accounts_only_with_a_server_password(short_dir: Path) -> None:
    cfg = config(short_dir, accounts_only=True, password="letmein")
    async with run_server(cfg) as server:
        address = server.addresses[0]
        await add(server, "alex", "pw")
        client = await LineClient.connect(address)
        await client.send("pass|letmein\nlogin|alex|pw\n")
        assert (await client.line()).endswith("]alex:user is online\n")
        assert await client.line() == "you have logged in as alex\n"
        json_user = await LineClient.connect(address)
        hello = {"password": "letmein", "login": {"name": "alex", "password": "pw"}}
        reply = await json_user.request(type="hello", **hello)
        assert reply["type"] == "welcome" and reply["account"] == "alex"


# ---------------------------------------------------------- messages kept offline


async def test_a_message_waits_for_an_offline_account(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    text_sender = await joined(address, "ci")
    await text_sender.send("to|ALEX|deploy done\n")
    assert await text_sender.line() == (
        "alex is offline; the message will be delivered when alex logs in\n"
    )
    json_sender, _ = await json_hello(address, name="bot")
    msgids = []
    for n in range(3):
        reply = await json_sender.request(type="message", to="alex", text=f"note {n}")
        assert reply["queued"] is True
        msgids.append(reply["msgid"])
    listed = await ask(server, type="accounts")
    assert [(a["name"], a["waiting"]) for a in listed["accounts"]] == [("alex", 4)]
    reply = await json_sender.request(type="message", to="nobody", text="x")
    assert reply["code"] == "no_such_user"
    user, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    kept = [await user.json_of_type("message") for _ in range(4)]
    assert [m["text"] for m in kept] == ["deploy done", "note 0", "note 1", "note 2"]
    assert [m["msgid"] for m in kept[1:]] == msgids
    assert [m["from"] for m in kept] == ["ci", "bot", "bot", "bot"]
    assert all(m["to"] == "alex" for m in kept)
    await user.aclose()
    again = await joined(address)
    await again.send("login|alex|pw\n")
    assert await again.line() == "you have logged in as alex\n"
    assert await again.silent()  # delivered once
    listed = await ask(server, type="accounts")
    assert listed["accounts"][0]["waiting"] == 0


async def test_text_users_see_kept_messages_with_their_time(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    sender = await joined(address, "ci")
    await sender.send("to|alex|hi\n")
    await sender.line()
    user = await joined(address)
    await user.send("login|alex|pw\n")
    assert await user.line() == "you have logged in as alex\n"
    assert await user.line() == "past 2027-01-15T08:00:00Z ci say: hi\n"


async def test_the_101st_waiting_message_is_refused(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    sender, _ = await json_hello(address, name="bot")
    for n in range(100):
        reply = await sender.request(type="message", to="alex", text=f"m{n}")
        assert reply.get("queued") is True, reply
    reply = await sender.request(type="message", to="alex", text="one too many")
    assert reply["code"] == "mailbox_full"
    removed = await ask(server, type="account_remove", name="alex")
    assert (removed["logged_out"], removed["discarded"]) == (0, 100)


async def test_expired_waiting_messages_are_not_delivered(server: Server, clock: Clock) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    sender, _ = await json_hello(address, name="bot")
    await sender.request(type="message", to="alex", text="old")
    clock.now += 31 * 86400  # past --offline-days (30)
    await sender.request(type="message", to="alex", text="new")
    user, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    message = await user.json_of_type("message")
    assert message["text"] == "new"
    assert await user.silent()


# ------------------------------------------------------------ private history


async def test_private_history_between_two_accounts(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    await add(server, "sam", "pw")
    await add(server, "eve", "pw")
    alex, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    sam, _ = await json_hello(address, login={"name": "sam", "password": "pw"})
    eve, _ = await json_hello(address, login={"name": "eve", "password": "pw"})
    await alex.request(type="message", to="sam", text="one")
    await sam.request(type="message", to="alex", text="two")
    await alex.request(type="message", text="public")
    await eve.request(type="message", to="alex", text="eve's")
    page = await alex.request(type="history", **{"with": "SAM"})
    assert [(m["from"], m["to"], m["text"]) for m in page["messages"]] == [
        ("alex", "sam", "one"),
        ("sam", "alex", "two"),
    ]
    assert page["more"] is False
    page = await sam.request(type="history", limit=1, **{"with": "alex"})
    assert [m["text"] for m in page["messages"]] == ["two"] and page["more"] is True
    older = await sam.request(
        type="history", limit=1, before=page["messages"][0]["msgid"], **{"with": "alex"}
    )
    assert [m["text"] for m in older["messages"]] == ["one"]
    page = await eve.request(type="history", **{"with": "sam"})
    assert page["messages"] == []  # eve and sam never talked: alex's words are not hers
    public = await alex.request(type="history")
    assert [m["text"] for m in public["messages"]] == ["public"]
    guest, _ = await json_hello(address)
    reply = await guest.request(type="history", **{"with": "alex"})
    assert reply["code"] == "login_required"
    reply = await alex.request(type="history", **{"with": "nobody"})
    assert reply["code"] == "no_such_user"


# ------------------------------------------------------- hashing off the loop


async def test_the_chat_answers_while_logins_hash(short_dir: Path) -> None:
    """Ten logins at a cost that takes a while each: a ping is answered long before
    they are done, because hashing runs in worker threads."""
    cfg = config(short_dir, password_hash_cost=15)
    async with run_server(cfg) as server:
        address = server.addresses[0]
        await add(server, "alex", "pw")
        clients = [await LineClient.connect(address) for _ in range(10)]
        pinger, _ = await json_hello(address)
        finished: list[str] = []

        async def log_in(client: LineClient) -> None:
            await client.send("login|alex|wrong\n")
            await client.line_matching("error")
            finished.append("login")

        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(log_in, client)
            await anyio.sleep(0.05)  # the logins are read and hashing
            await pinger.request(type="ping")
            finished.append("ping")
        assert finished[0] == "ping"
        assert len(finished) == 11


# ------------------------------------------- bans and mutes on accounts (issue 14)


async def test_a_banned_account_cannot_log_in(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    user, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    reply = await ask(server, type="ban", target="ALEX", reason="spam")
    assert (reply["target"], reply["removed"]) == ("alex", 1)
    bye = await user.json_of_type("bye")
    assert bye == {"type": "bye", "reason": "banned", "message": "you are banned: spam"}
    assert await user.eof()
    listed = await ask(server, type="bans")
    assert [(b["target"], b["kind"]) for b in listed["bans"]] == [("alex", "account")]
    again = await joined(address)  # its address is not banned: only the account
    await again.send("login|alex|pw\n")
    assert await again.line() == "you are banned: spam\n"
    assert await again.eof()
    wrong = await joined(address)
    await wrong.send("login|alex|nope\n")  # a wrong password learns nothing of the ban
    assert await wrong.line() == "error: wrong name or password\n"
    assert (await ask(server, type="unban", target="Alex"))["target"] == "alex"
    back = await joined(address)
    await back.send("login|alex|pw\n")
    assert await back.line() == "you have logged in as alex\n"


async def test_a_mute_on_an_account_outlives_the_connection(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "alex", "pw")
    await add(server, "sam", "pw")
    user, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    reply = await ask(server, type="mute", name="alex", reason="calm down")
    assert reply == {"type": "ok", "name": "alex", "until": None, "account": True}
    refused = await user.request(type="message", text="hi")
    assert refused["code"] == "muted"
    await user.aclose()
    back, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    refused = await back.request(type="message", text="hi")
    assert (refused["code"], refused["message"]) == ("muted", "you are muted: calm down")
    reply = await ask(server, type="mute", name="sam", **{"for": 600})  # offline: kept
    assert reply["name"] == "sam" and reply["until"] is not None
    sam, _ = await json_hello(address, login={"name": "sam", "password": "pw"})
    assert (await sam.request(type="message", text="x"))["code"] == "muted"
    await ask(server, type="unmute", name="alex")
    assert (await back.request(type="message", text="free"))["type"] == "ok"
    await back.aclose()
    again, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
    assert (await again.request(type="message", text="still free"))["type"] == "ok"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_removing_an_account_deletes_what_it_sent_that_still_waits(
    kind: str, short_dir: Path, tmp_path: Path
) -> None:
    """Issue 25, item 7: a message alice sent to offline bob is not delivered, after
    alice's account is removed and the name given to someone else, as the new alice's
    (in memory, and in the file: after a restart too)."""
    db = "none" if kind == "memory" else str(tmp_path / "chat.db")
    async with run_server(config(short_dir, db=db)) as server:
        address = server.addresses[0]
        for name in ("alice", "bob", "carol"):
            await add(server, name, "pw")
        alice, _ = await json_hello(address, login={"name": "alice", "password": "pw"})
        guest, _ = await json_hello(address, name="guest")
        assert (await alice.request(type="message", to="bob", text="old"))["queued"]
        assert (await guest.request(type="message", to="bob", text="guest's"))["queued"]
        assert (await alice.request(type="message", to="carol", text="old too"))["queued"]
        removed = await ask(server, type="account_remove", name="ALICE")
        assert (removed["logged_out"], removed["discarded"]) == (1, 0)
        await add(server, "alice", "someone else's")
        listed = await ask(server, type="accounts")
        waiting = {a["name"]: a["waiting"] for a in listed["accounts"]}
        assert waiting == {"bob": 1, "carol": 0, "alice": 0}
        if kind == "memory":
            await only_the_guest_s_message_waits(address)
    if kind == "sqlite":  # the file forgot them too
        async with run_server(config(short_dir, db=db)) as server:
            await only_the_guest_s_message_waits(server.addresses[0])


async def only_the_guest_s_message_waits(address: str) -> None:
    bob, _ = await json_hello(address, login={"name": "bob", "password": "pw"})
    kept = await bob.json_of_type("message")
    assert (kept["text"], kept["from"], kept["account"]) == ("guest's", "guest", None)
    assert await bob.silent()
    carol, _ = await json_hello(address, login={"name": "carol", "password": "pw"})
    assert await carol.silent()


async def test_account_bans_and_mutes_survive_a_restart(short_dir: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with run_server(config(short_dir, db=db)) as server:
        await add(server, "alex", "pw")
        await add(server, "sam", "pw")
        await ask(server, type="ban", target="sam")
        await ask(server, type="mute", name="alex")
    async with run_server(config(short_dir, db=db)) as server:
        address = server.addresses[0]
        alex, _ = await json_hello(address, login={"name": "alex", "password": "pw"})
        assert (await alex.request(type="message", text="x"))["code"] == "muted"
        sam = await joined(address)
        await sam.send("login|sam|pw\n")
        assert await sam.line() == "you are banned\n"


# ------------------------------------------------ races and look-alikes (review)


async def test_conversations_of_look_alike_pairs_stay_apart(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some characters' keys begin with a space (U+037A is " i"): a conversation's key
    must still tell the pair (aͺ, ib) from the pair (a, iͺb). U+037A, a compatibility
    character, is no longer allowed in new names (RFC 8265), but accounts added before
    keep their names: these are added as an older server did."""
    address = server.addresses[0]
    with monkeypatch.context() as older_server:
        older_server.setattr(account_requests, "name_problem", lambda name: None)
        for name in ("a\u037a", "ib", "a", "i\u037ab"):
            await add(server, name, "pw")
    first, _ = await json_hello(address, login={"name": "a\u037a", "password": "pw"})
    second, _ = await json_hello(address, login={"name": "a", "password": "pw"})
    await first.request(type="message", to="ib", text="SECRET")
    page = await second.request(type="history", **{"with": "i\u037ab"})
    assert page["messages"] == []
    await ask(server, type="account_remove", name="a")
    page = await first.request(type="history", **{"with": "ib"})
    assert [m["text"] for m in page["messages"]] == ["SECRET"]


async def test_a_passwd_cut_off_by_a_takeover_still_gets_its_reply(short_dir: Path) -> None:
    """Issue 25, item 8: a passwd whose session is replaced while its hashes run gets
    one reply (session_ended) before its bye, and the password stays as it was."""
    # Hashes that take a while (cost 15: about 0.15 s each here), so that the login from
    # elsewhere (one hash) ends while the passwd (two hashes) is still being worked on.
    async with run_server(config(short_dir, password_hash_cost=15)) as server:
        address = server.addresses[0]
        await add(server, "alex", "old")
        host, port = split_addr(address)
        first, second = [  # two addresses: their logins do not wait for one another
            LineClient(await anyio.connect_tcp(host, port, local_host=source))
            for source in ("127.0.0.5", "127.0.0.6")
        ]
        reply = await first.request(type="hello", login={"name": "alex", "password": "old"})
        assert reply["type"] == "welcome", reply
        assert (await second.request(type="hello"))["type"] == "welcome"
        await first.send('{"type":"passwd","old":"old","new":"new","id":"p"}\n')
        await second.send('{"type":"login","name":"alex","password":"old","id":"l2"}\n')
        assert (await second.json_of_type("ok"))["id"] == "l2"
        ended = await first.json()
        assert ended == {
            "type": "error",
            "id": "p",
            "code": "session_ended",
            "message": "your password was not changed: "
            "you logged in to your account from somewhere else",
        }
        assert (await first.json())["reason"] == "replaced"
        assert await first.eof()
        await anyio.sleep(0.5)  # its hash has ended: nothing changed the password after
        third, reply = await json_hello(address, login={"name": "alex", "password": "old"})
        assert reply["type"] == "welcome", reply


async def test_failed_logins_sent_at_once_count_before_the_next(server: Server) -> None:
    address = server.addresses[0]
    await add(server, "bob", "right")
    client = await client_from(address, "127.0.0.4")
    await client.send("".join(f"login|bob|guess{n}\n" for n in range(8)))
    answers = [await client.line() for _ in range(8)]
    assert answers[:3] == ["error: wrong name or password\n"] * 3
    assert all(a.startswith("error: too many failed logins") for a in answers[3:])


async def test_a_login_does_not_undo_a_removal_or_a_mute(short_dir: Path) -> None:
    """A login whose password is being hashed while the account is removed (or muted)
    must not bring the account back (or lift the mute) when it saves its login time."""
    async with run_server(config(short_dir, password_hash_cost=16)) as server:
        address = server.addresses[0]
        await add(server, "carol", "pw")
        await add(server, "dan", "pw")
        carol = await joined(address)
        await carol.send("login|carol|pw\n")
        await anyio.sleep(0.05)  # its password is being hashed
        assert (await ask(server, type="account_remove", name="carol"))["type"] == "ok"
        assert await carol.line() == "error: wrong name or password\n"
        listed = await ask(server, type="accounts")
        assert [a["name"] for a in listed["accounts"]] == ["dan"]
        dan = await joined(address)
        await dan.send("login|dan|pw\n")
        await anyio.sleep(0.05)
        assert (await ask(server, type="mute", name="dan"))["type"] == "ok"
        assert await dan.line() == "you have logged in as dan\n"
        await dan.send("hello?\n")
        assert (await dan.line()).startswith("error: you are muted")
        assert server.hub.store.accounts[name_key("dan")].muted_until == float("inf")


async def test_a_login_read_in_time_is_checked_however_long_hashing_takes(
    short_dir: Path,
) -> None:
    """--accounts-only bounds waiting for the login line, not the queue of hashes."""
    cfg = config(short_dir, accounts_only=True, auth_timeout=0.5, password_hash_cost=16)
    async with run_server(cfg) as server:
        address = server.addresses[0]
        await add(server, "eve", "pw")
        clients = [await LineClient.connect(address) for _ in range(6)]
        for client in clients:
            await client.send("login|eve|pw\n")
        for client in clients:
            assert "logged in as eve" in await client.line_matching("logged in|login|bye|no ")
