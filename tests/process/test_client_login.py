"""The client library's accounts: login in the hello and later, passwd, the account of
messages and users, queued private messages, private history, and the error classes of
the new codes.

What the client sends and how it reads each reply is tested against a stand-in server
(tests/support/scripted.py); the end-to-end tests, at the end, against `imkit serve`.

Here the tests that run imkit subprocesses; the others are in
server/test_client_login.py, unit/test_client_login.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from imkit.client.library import ChatMessage, NameChange, connect
from imkit.errors import (
    Disconnected,
    LoggedIn,
    LoginFailed,
    LoginRequired,
    NameReserved,
    NoSuchUser,
    TooManyAttempts,
)
from imkit.protocol import Event
from tests.support.accounts import AccountsServer, start_accounts_server

# ---------------------------------------------------------------- end to end (a server)


@pytest.fixture
def real(real: AccountsServer) -> AccountsServer:
    """tests/process/conftest.py's server, with the accounts these tests log in to."""
    real.add("alex", "pw-alex")
    real.add("sam", "pw-sam")
    return real


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
