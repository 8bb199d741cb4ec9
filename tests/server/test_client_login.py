"""The client library's accounts: login in the hello and later, passwd, the account of
messages and users, queued private messages, private history, and the error classes of
the new codes.

What the client sends and how it reads each reply is tested against a stand-in server
(tests/scripted_server.py); the end-to-end tests, at the end, against `imkit serve`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from imkit.client.library import ChatMessage, NameChange, Receipt, UserInfo, connect
from imkit.errors import (
    Disconnected,
    LoggedIn,
    LoginFailed,
    LoginRequired,
    MailboxFull,
    NameReserved,
    NoSuchUser,
    ServerError,
    TooManyAttempts,
)
from imkit.protocol import Event
from tests.account_support import AccountsServer, start_accounts_server
from tests.scripted_server import Answer, Json, ScriptedServer, Session

pytestmark = pytest.mark.anyio


@pytest.fixture
def plain() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def scripted(answer: Answer) -> ScriptedServer:
    return ScriptedServer(answer)


def error(request: Json, code: str, message: str) -> list[Json]:
    return [{"type": "error", "id": request.get("id"), "code": code, "message": message}]


# ---------------------------------------------------------------------- error classes


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("name_reserved", NameReserved),
        ("logged_in", LoggedIn),
        ("login_failed", LoginFailed),
        ("too_many_attempts", TooManyAttempts),
        ("login_required", LoginRequired),
        ("mailbox_full", MailboxFull),
    ],
)
def test_each_new_code_has_its_class(code: str, cls: type[ServerError]) -> None:
    raised = ServerError.from_reply(code, "why")
    assert type(raised) is cls
    assert (raised.code, str(raised)) == (code, "why")


# -------------------------------------------------------------------------- logging in


async def test_hello_carries_the_login(plain: ScriptedServer) -> None:
    async with connect("127.0.0.1", plain.port, login=("alex", "pw|x")) as client:
        assert (client.name, client.account) == ("alex", "alex")
    (hello,) = plain.of_type("hello")
    assert hello["login"] == {"name": "alex", "password": "pw|x"}
    assert "name" not in hello and "password" not in hello  # the server's password: none


async def test_without_login_there_is_no_account(plain: ScriptedServer) -> None:
    async with connect("127.0.0.1", plain.port, name="guest", password="srv") as client:
        assert (client.name, client.account) == ("guest", None)
    (hello,) = plain.of_type("hello")
    assert "login" not in hello and hello["password"] == "srv"


async def test_name_and_login_do_not_go_together(plain: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="name or login"):
        async with connect("127.0.0.1", plain.port, name="a", login=("a", "b")):
            pass
    assert plain.requests == []  # refused before connecting


@pytest.mark.parametrize(
    ("code", "cls"), [("login_failed", LoginFailed), ("too_many_attempts", TooManyAttempts)]
)
async def test_a_failed_login_in_the_hello_raises(code: str, cls: type[ServerError]) -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "hello":
            return error(request, code, "wrong name or password")
        return None

    server = scripted(answer)
    try:
        with pytest.raises(cls, match="wrong name or password"):
            async with connect("127.0.0.1", server.port, login=("alex", "bad")):
                pass
    finally:
        server.close()


async def test_login_later(plain: ScriptedServer) -> None:
    async with connect("127.0.0.1", plain.port) as client:
        assert not client.account
        assert await client.login("alex", "pw") == "alex"
        assert (client.name, client.account) == ("alex", "alex")
    (login,) = plain.of_type("login")
    assert {k: v for k, v in login.items() if k != "id"} == {
        "type": "login",
        "name": "alex",
        "password": "pw",
    }


async def test_login_takes_the_accounts_spelling() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "login":
            return [{"type": "ok", "id": request["id"], "name": "Alex", "account": "Alex"}]
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port) as client:
            assert await client.login("ALEX", "pw") == "Alex"
            assert client.account == "Alex"
    finally:
        server.close()


async def test_failed_login_leaves_the_client_as_it_was() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "login":
            return error(request, "login_failed", "wrong name or password")
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port, name="guest") as client:
            with pytest.raises(LoginFailed):
                await client.login("alex", "nope")
            assert (client.name, client.account) == ("guest", None)
            assert await client.ping() >= 0  # still connected
    finally:
        server.close()


async def test_passwd(plain: ScriptedServer) -> None:
    async with connect("127.0.0.1", plain.port, login=("alex", "old")) as client:
        await client.passwd("old", "new")
    (passwd,) = plain.of_type("passwd")
    assert (passwd["old"], passwd["new"]) == ("old", "new")


@pytest.mark.parametrize(
    ("kind", "code", "cls"),
    [
        ("passwd", "login_required", LoginRequired),
        ("passwd", "login_failed", LoginFailed),
        ("rename", "name_reserved", NameReserved),
        ("rename", "logged_in", LoggedIn),
    ],
)
async def test_refusals_raise_their_class(kind: str, code: str, cls: type[ServerError]) -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == kind:
            return error(request, code, "no")
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port) as client:
            with pytest.raises(cls):
                if kind == "passwd":
                    await client.passwd("a", "b")
                else:
                    await client.rename("alex")
    finally:
        server.close()


# ------------------------------------------------------------- queued private messages


async def test_submit_says_when_a_message_was_kept_for_an_offline_account() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "message" and request.get("to") == "alex":
            return [
                {"type": "ok", "id": request["id"], "msgid": "1795764673091001", "queued": True}
            ]
        if request["type"] == "message" and request.get("to") == "full":
            return error(request, "mailbox_full", "full has 100 messages waiting")
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port) as client:
            assert await client.submit("later", to="alex") == Receipt("1795764673091001", True)
            assert await client.send("later", to="alex") == "1795764673091001"
            public = await client.submit("now")
            assert public.queued is False and public.msgid is not None
            with pytest.raises(MailboxFull):
                await client.submit("one more", to="full")
    finally:
        server.close()


# ------------------------------------------------------------------ private history


async def test_history_with_an_account(plain: ScriptedServer) -> None:
    async with connect("127.0.0.1", plain.port, login=("alex", "pw")) as client:
        await client.history(10, with_="bob")
        await client.history(10)
    with_bob, public = plain.of_type("history")
    assert (with_bob["with"], with_bob["limit"]) == ("bob", 10)
    assert "with" not in public


# ------------------------------------------------------------------- account fields


async def test_messages_and_users_carry_the_account() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "who":
            users = [
                {"name": "alex", "addr": "a:1", "account": "alex"},
                {"name": "guest", "addr": "b:2", "account": None},
                {"name": "old", "addr": "c:3"},  # an older server: no field
            ]
            return [{"type": "users", "id": request["id"], "users": users}]
        if request["type"] == "ping":
            base = {"type": "message", "to": None, "text": "hi", "time": "2026-11-27T07:31:13Z"}
            return [
                base | {"from": "alex", "addr": "a:1", "account": "alex"},
                base | {"from": "guest", "addr": "b:2", "account": None},
                {"type": "pong", "id": request["id"]},
            ]
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port) as client:
            assert await client.who() == [
                UserInfo("alex", "a:1", "alex"),
                UserInfo("guest", "b:2", None),
                UserInfo("old", "c:3", None),
            ]
            await client.ping()
            events = client.events()
            first, second = await anext(events), await anext(events)
            assert isinstance(first, ChatMessage) and first.account == "alex"
            assert isinstance(second, ChatMessage) and second.account is None
    finally:
        server.close()


async def test_a_name_taken_by_an_account_renames_us() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "ping":
            notice = {"type": "rename", "old": "alex", "new": session.addr, "addr": session.addr}
            return [notice | {"reason": "reserved"}, {"type": "pong", "id": request["id"]}]
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port, name="alex") as client:
            await client.ping()
            events = client.events()
            event = await anext(events)
            while not (isinstance(event, NameChange) and event.reason == "reserved"):
                event = await anext(events)
            assert client.name == event.new != "alex"
    finally:
        server.close()


async def test_replaced_by_a_newer_login() -> None:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "ping":
            message = "you logged in from another place"
            return [{"type": "bye", "reason": "replaced", "message": message}]
        return None

    server = scripted(answer)
    try:
        async with connect("127.0.0.1", server.port, login=("alex", "pw")) as client:
            with pytest.raises(Disconnected) as raised:
                await client.ping()
            assert raised.value.reason == "replaced"
    finally:
        server.close()


# ---------------------------------------------------------------- end to end (a server)


@pytest.fixture
def real(short_dir: Path) -> Iterator[AccountsServer]:
    server = start_accounts_server(short_dir)
    server.add("alex", "pw-alex")
    server.add("sam", "pw-sam")
    yield server
    server.stop()


async def test_login_in_the_hello_and_later(real: AccountsServer) -> None:
    async with connect(real.host, real.port, name="watcher") as watcher:
        events = watcher.events()
        async with connect(real.host, real.port, login=("ALEX", "pw-alex")) as alex:
            assert (alex.name, alex.account) == ("alex", "alex")
            async with connect(real.host, real.port) as guest:
                assert not guest.account
                assert await guest.login("Sam", "pw-sam") == "sam"
                assert (guest.name, guest.account) == ("sam", "sam")
                # everyone sees a login as a rename
                seen = [e async for e in _until(events, lambda e: _renamed_to(e, "sam"))]
                assert any(_renamed_to(e, "alex") for e in seen)
                users = {u.name: u.account for u in await watcher.who()}
                assert users == {"watcher": None, "alex": "alex", "sam": "sam"}


def _renamed_to(event: object, name: str) -> bool:
    return isinstance(event, NameChange) and event.new == name


async def _until(
    events: AsyncIterator[Event], done: Callable[[Event], bool]
) -> AsyncIterator[Event]:
    with anyio.fail_after(10):
        async for event in events:
            yield event
            if done(event):
                return


async def test_wrong_passwords_then_too_many_attempts(real: AccountsServer) -> None:
    for _ in range(3):
        with pytest.raises(LoginFailed, match="wrong name or password"):
            async with connect(real.host, real.port, login=("alex", "nope")):
                pass
    async with connect(real.host, real.port) as client:
        with pytest.raises(TooManyAttempts, match="too many failed logins"):
            await client.login("alex", "pw-alex")  # even the right one, this minute
        assert client.account is None


async def test_reserved_names_and_a_logged_in_rename(real: AccountsServer) -> None:
    with pytest.raises(NameReserved):
        async with connect(real.host, real.port, name="ALEX"):
            pass
    async with connect(real.host, real.port) as guest:
        with pytest.raises(NameReserved):
            await guest.rename("sam")
    async with connect(real.host, real.port, login=("alex", "pw-alex")) as alex:
        with pytest.raises(LoggedIn):
            await alex.rename("someone")
        assert alex.name == "alex"


async def test_a_second_login_replaces_the_first(real: AccountsServer) -> None:
    async with connect(real.host, real.port, login=("alex", "pw-alex")) as first:
        async with connect(real.host, real.port, login=("alex", "pw-alex")) as second:
            with pytest.raises(Disconnected) as raised:
                async for _ in first.events():
                    pass
            assert raised.value.reason == "replaced"
            assert await second.ping() >= 0


async def test_a_message_waits_for_an_offline_account(real: AccountsServer) -> None:
    async with connect(real.host, real.port, login=("sam", "pw-sam")) as sam:
        one = await sam.submit("while you were away", to="alex")
        two = await sam.submit("and this", to="ALEX")
        assert one.queued and two.queued and one.msgid and two.msgid
        assert await sam.send("for everyone") is not None
        with pytest.raises(NoSuchUser):
            await sam.send("hello?", to="nobody")  # not an account: refused as before
    async with connect(real.host, real.port, login=("alex", "pw-alex")) as alex:
        events = alex.events()
        kept = [
            e
            async for e in _until(
                events, lambda e: isinstance(e, ChatMessage) and e.text == "and this"
            )
            if isinstance(e, ChatMessage)
        ]
        assert [(m.sender, m.account, m.to, m.text, m.msgid) for m in kept] == [
            ("sam", "sam", "alex", "while you were away", one.msgid),
            ("sam", "sam", "alex", "and this", two.msgid),
        ]
        receipt = await alex.submit("got it", to="sam")  # sam is offline now too
        assert receipt.queued


async def test_private_history_and_passwd(real: AccountsServer) -> None:
    async with (
        connect(real.host, real.port, login=("alex", "pw-alex")) as alex,
        connect(real.host, real.port, login=("sam", "pw-sam")) as sam,
    ):
        await alex.send("one", to="sam")
        await sam.send("two", to="alex")
        page = await alex.history(with_="SAM")
        assert [(m.sender, m.text) for m in page.messages] == [("alex", "one"), ("sam", "two")]
        assert (await alex.history()).messages == ()  # public history: none
        with pytest.raises(LoginFailed):
            await alex.passwd("wrong", "new-pw")
        await alex.passwd("pw-alex", "new-pw")
    async with connect(real.host, real.port) as guest:
        with pytest.raises(LoginRequired):
            await guest.passwd("a", "b")
        with pytest.raises(LoginRequired):
            await guest.history(with_="alex")
        assert await guest.login("alex", "new-pw") == "alex"


async def test_message_events_carry_the_senders_account(real: AccountsServer) -> None:
    async with (
        connect(real.host, real.port, name="listener") as listener,
        connect(real.host, real.port, login=("alex", "pw-alex")) as alex,
        connect(real.host, real.port, name="guest") as guest,
    ):
        await alex.send("verified")
        await guest.send("not")
        events = listener.events()
        got = [
            e
            async for e in _until(events, lambda e: isinstance(e, ChatMessage) and e.text == "not")
            if isinstance(e, ChatMessage)
        ]
        assert [(m.sender, m.account) for m in got] == [("alex", "alex"), ("guest", None)]


async def test_accounts_only(short_dir: Path) -> None:
    server = start_accounts_server(short_dir, "--accounts-only")
    try:
        server.add("alex", "pw")
        with pytest.raises(LoginRequired):
            async with connect(server.host, server.port):
                pass
        async with connect(server.host, server.port, login=("alex", "pw")) as alex:
            assert alex.account == "alex"
            assert [u.name for u in await alex.who()] == ["alex"]
    finally:
        server.stop()
