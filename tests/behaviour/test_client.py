"""The client library against a real server: each call and each error code.

Here the tests that run on one node and on two; the others are in server/test_client.py."""

from __future__ import annotations

import anyio
import pytest

from imkit.client.library import ChatMessage, UserInfo, connect
from imkit.errors import (
    NameTaken,
    NoSuchUser,
)
from tests.behaviour.conftest import Chat
from tests.support import joined


async def test_send_public_and_private_and_events(chat: Chat) -> None:
    async with (
        connect(*chat.hostport(0), name="alex") as alex,
        connect(*chat.hostport(1), name="bob") as bob,
    ):
        events = bob.events()
        await alex.send("hello everyone")
        await alex.send("只给你", to="BOB")
        public = await anext(events)
        while not isinstance(public, ChatMessage):
            public = await anext(events)
        assert (public.sender, public.to, public.text) == ("alex", None, "hello everyone")
        private = await anext(events)
        assert isinstance(private, ChatMessage)
        assert (private.sender, private.to, private.text) == ("alex", "bob", "只给你")
        assert private.time > 0


async def test_who(chat: Chat) -> None:
    text_user = await joined(chat.address(0), "tee")
    async with connect(*chat.hostport(1), name="jay") as jay:
        assert await jay.who() == [UserInfo("tee", text_user.addr), UserInfo("jay", jay.addr)]


async def test_ping(chat: Chat) -> None:
    async with connect(*chat.hostport(0)) as client:
        assert 0 < await client.ping() < 5


async def test_hello_name_taken_raises_on_connect(chat: Chat) -> None:
    async with connect(*chat.hostport(0), name="alex"):
        with pytest.raises(NameTaken, match="taken"):
            async with connect(*chat.hostport(1), name="Alex"):
                pass


async def test_callers_exception_is_not_wrapped(chat: Chat) -> None:
    with pytest.raises(KeyError):
        async with connect(*chat.hostport(0)):
            raise KeyError("mine")


async def test_events_false_discards_events_but_requests_work(chat: Chat) -> None:
    async with connect(*chat.hostport(0), events=False) as quiet:
        async with connect(*chat.hostport(1), name="chatty") as chatty:
            for i in range(50):
                await chatty.send(f"noise {i}")
        assert len(await quiet.who()) == 1


async def test_concurrent_requests_get_their_own_replies(chat: Chat) -> None:
    async with connect(*chat.hostport(0), name="multi") as client:
        results: list[object] = []

        async def one(i: int) -> None:
            if i % 3 == 0:
                results.append(await client.who())
            elif i % 3 == 1:
                await client.send(f"m{i}")
                results.append("sent")
            else:
                with pytest.raises(NoSuchUser):
                    await client.send("x", to=f"ghost{i}")
                results.append("refused")

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
        assert results.count("sent") == 10 and results.count("refused") == 10
