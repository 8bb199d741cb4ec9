"""``imkit chat``'s rooms (docs/rooms.md): the menu's room items (6 list rooms, 7 join a
room, 8 talk in a room, 9 leave a room) and how the rooms' events are shown.

A room's lines begin with its name, as in text mode: ``#builds sam: the build is
green``, and ``#builds * sam has joined`` for what is not a message. The lobby's lines
stay as they were, without a room's name: a public message is shown with its room when
the client is in that room (:meth:`imkit.client.rooms.RoomRequests.in_room`), which the
lobby is not (unless it was left and joined again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imkit.client.library import ChatMessage, Client
from imkit.client.output import printable
from imkit.errors import ServerError
from imkit.protocol import (
    Invited,
    Joined,
    ModesChanged,
    RoomJoin,
    RoomKicked,
    RoomPart,
    TopicInfo,
)

if TYPE_CHECKING:
    from imkit.client.chat import ChatSession

ROOM_MENU = """\
6 list rooms
7 join a room
8 talk in a room
9 leave a room"""
ROOM_CHOICES = ("6", "7", "8", "9")


def room_of(message: ChatMessage, client: Client) -> str:
    """``#ROOM `` before a public message of a room we joined; "" for the lobby's and
    private ones."""
    if message.to is None and message.room and client.in_room(message.room):
        return f"{printable(message.room)} "
    return ""


def describe_room_event(event: object, client: Client) -> str | None:
    """How a room's event (not a message) is shown; None for other events."""
    if isinstance(event, RoomJoin):
        if event.name == client.name:
            return None
        return f"{printable(event.room)} * {printable(event.name)} has joined"
    if isinstance(event, RoomPart):
        line = f"{printable(event.room)} * {printable(event.name)} has left"
        return f"{line}: {printable(event.reason)}" if event.reason else line
    if isinstance(event, RoomKicked) and event.name == client.name:
        line = f"{printable(event.room)} * you were kicked by {printable(event.by)}"
        return f"{line}: {printable(event.reason)}" if event.reason else line
    if isinstance(event, TopicInfo | RoomKicked | ModesChanged):
        return printable(event.text_line())
    if isinstance(event, Invited):
        room, by = printable(event.room), printable(event.by)
        return f"* {by} invites you to {room} (7 joins a room)"
    if isinstance(event, Joined):  # a logged-in account put back in a room at login
        return f"{printable(event.room)} * you are in {printable(event.room)}"
    return None


def room_name(text: str) -> str:
    """What the person typed as a room's name: ``builds`` is ``#builds``."""
    text = text.strip()
    return text if not text or text.startswith("#") else f"#{text}"


class RoomItems:
    """The menu's room items, shown and asked through a :class:`ChatSession`."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.client = session.client

    async def choose(self, choice: str) -> None:
        if choice == "6":
            await self.list_rooms()
        elif choice == "7":
            await self.join_and_talk()
        elif choice == "8":
            await self.pick_and_talk()
        elif choice == "9":
            await self.leave()

    async def list_rooms(self) -> None:
        """6: every room we may see, with its members and topic; ours marked."""
        say = self.session.say
        try:
            rooms = await self.client.rooms()
        except ServerError as error:
            say(f"! {error}")
            return
        say(f"rooms ({len(rooms)}):")
        for info in rooms:
            count = f"{info.members} member{'' if info.members == 1 else 's'}"
            topic = f"  topic: {printable(info.topic)}" if info.topic else ""
            mine = " (you are in it)" if self.client.in_room(info.room) else ""
            say(f"  {printable(info.room)}  {count}{mine}{topic}")

    async def join_and_talk(self) -> None:
        """7: join a room (its key asked when it has one), then talk in it."""
        room = room_name(await self.session.ask("room to join (#name)? "))
        if room and await self.join(room):
            await self.talk(room)

    async def join(self, room: str) -> bool:
        """Join ``room``, asking for its key when the server says it needs one; says
        what the room is like (members, topic) and shows its last messages."""
        try:
            joined = await self.client.join(room)
        except ServerError as error:
            if error.code != "bad_key":
                self.session.say(f"! {error}")
                return False
            key = await self.session.ask_secret(f"key of {printable(room)}? ")
            try:
                joined = await self.client.join(room, key or None)
            except ServerError as again:
                self.session.say(f"! {again}")
                return False
        name = printable(joined.room)
        count = f"{joined.members} member{'' if joined.members == 1 else 's'}"
        operator = ", you are its operator" if joined.operator else ""
        self.session.say(f"you have joined {name} ({count}{operator})")
        if joined.topic:
            self.session.say(f"{name} * topic: {printable(joined.topic)}")
        await self.session.show_history(self.session.history_count, room=joined.room)
        return True

    async def pick_and_talk(self) -> None:
        """8: talk in one of our rooms (one we are not in is joined first)."""
        room = await self.pick("talk in which room? ")
        if not room:
            return
        if not self.client.in_room(room) and not await self.join(room):
            return
        await self.talk(room)

    async def talk(self, room: str) -> None:
        shown = printable(room)
        header = f"talking in {shown}: type a message and press Enter; 'exit' goes back"
        while (text := await self.session.ask(f"{shown}> ", header)) != "exit":
            header = ""
            if not self.client.in_room(room):  # kicked meanwhile (its line said so)
                self.session.say(f"! you are no longer in {shown}; that line was not sent")
                return
            if text:
                await self.session.attempt(self.client.send(text, room=room))

    async def leave(self) -> None:
        """9: leave one of our rooms."""
        room = await self.pick("leave which room? ")
        if room and await self.session.attempt(self.client.part(room)):
            self.session.say(f"you have left {printable(room)}")

    async def pick(self, prompt: str) -> str:
        """A room's name, after the list of ours; "" when the person typed none."""
        ours = self.client.rooms_joined
        if ours:
            self.session.say(f"your rooms: {', '.join(printable(room) for room in ours)}")
        else:
            self.session.say("you are in no room but the lobby; 7 joins one")
        return room_name(await self.session.ask(prompt))
