"""The client library's accounts: login in the hello and later, passwd, the account of
messages and users, queued private messages, private history, and the error classes of
the new codes.

What the client sends and how it reads each reply is tested against a stand-in server
(tests/support/scripted.py); the end-to-end tests, at the end, against `imkit serve`.

Here the tests that need an in-process server on loopback; the others are in
process/test_client_login.py, unit/test_client_login.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imkit.client.library import ChatMessage, NameChange, Receipt, UserInfo, connect
from imkit.errors import (
    Disconnected,
    LoggedIn,
    LoginFailed,
    LoginRequired,
    MailboxFull,
    NameReserved,
    ServerError,
    TooManyAttempts,
)
from tests.support.scripted import Answer, Json, ScriptedServer, Session


@pytest.fixture
def plain() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def scripted(answer: Answer) -> ScriptedServer:
    return ScriptedServer(answer)


def error(request: Json, code: str, message: str) -> list[Json]:
    return [{"type": "error", "id": request.get("id"), "code": code, "message": message}]


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
