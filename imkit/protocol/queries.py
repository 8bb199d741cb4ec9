"""Requests about people rather than messages, which the IRC port needs and the hub
answers from what it knows of its members (docs/irc.md): who someone is (WHOIS, WHO,
ISON, USERHOST), the chat's counts (LUSERS), being away (AWAY), quitting with a reason
(QUIT), a user's account changing (:class:`AccountChanged`); and :class:`Answer`, a
reply a client's own wire made (an IRC PONG, a CAP list), queued through the hub so
that it keeps its place among the hub's replies."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from imkit.protocol.commands import Command
from imkit.protocol.events import Event, one_line
from imkit.protocol.records import record


@record(kw_only=True)
class Answer(Command):
    """A reply the client's wire made itself, sent in order with the hub's."""

    event: Event


@record(kw_only=True)
class Whois(Command):
    """Who the users called ``names`` are (those online); with ``room``, every member
    of that room here instead (an IRC ``WHO #room``)."""

    names: tuple[str, ...] = ()
    room: str | None = None


@record(kw_only=True)
class Lusers(Command):
    pass


@record(kw_only=True)
class SetAway(Command):
    """Away with ``message``, or back (None); ``again``: only tell the others once
    more (an IRC user that is away joined a channel: away-notify), no reply."""

    message: str | None = None
    again: bool = False


@record(kw_only=True)
class UserModes(Command):
    """Change one's own IRC user modes (``i``, ``w``; ``o`` only through OPER)."""

    add: str = ""
    remove: str = ""


@record(kw_only=True)
class SetName(Command):
    """An IRC client's new real name (SETNAME)."""

    realname: str


@record(kw_only=True)
class Kill(Command):
    """An IRC operator (OPER) disconnects the user ``name``."""

    name: str
    reason: str


@record(kw_only=True)
class Wallops(Command):
    """An IRC operator's message to every user with the user mode ``w``."""

    text: str


@record(kw_only=True)
class Quit(Command):
    """Leave the chat; ``reason`` is told to those who see it go."""

    reason: str | None = None


@record
class Person:
    """One online user, as a :class:`Whois` reply describes it."""

    name: str
    addr: str
    account: str | None
    ident: str | None
    realname: str | None
    away: str | None
    idle: float | None  # seconds since its last line (None: known only to its own node)
    signon: float  # when it connected (seconds since the epoch)
    rooms: tuple[str, ...] = ()  # its rooms the asker may see, "@#r" operator, "+#r" voice
    modes: str = ""  # its IRC user modes (i: invisible, o: an IRC operator)


@record
class People(Event):
    """The reply to :class:`Whois`: the users found, in the order asked."""

    id: Any
    asked: tuple[str, ...]
    found: tuple[Person, ...]
    room: str | None = None

    def text_line(self) -> str:
        if not self.found:
            return "no such users online"
        return "\n".join(f"[{p.addr}]{one_line(p.name)}:online..." for p in self.found)

    def json_fields(self) -> dict[str, Any]:
        people = [
            {"name": p.name, "addr": p.addr, "account": p.account, "away": p.away}
            for p in self.found
        ]
        return {"type": "people", "id": self.id, "people": people}


@record
class Counts(Event):
    """The reply to :class:`Lusers`: users online (``here``: on this server), rooms."""

    id: Any
    users: int
    here: int
    rooms: int
    most_here: int = 0  # the most seen at once
    most_users: int = 0

    def text_line(self) -> str:
        return f"{self.users} users online, {self.rooms} rooms"

    def json_fields(self) -> dict[str, Any]:
        return {
            "type": "counts",
            "id": self.id,
            "users": self.users,
            "here": self.here,
            "rooms": self.rooms,
        }


@record
class AwayOk(Event):
    """The reply to :class:`SetAway`."""

    id: Any
    away: bool

    def text_line(self) -> str:
        return "you are marked as away" if self.away else "you are no longer marked as away"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "away": self.away}


@record(kw_only=True)
class Register(Command):
    """An IRC client's registration (NICK and USER): its name in the chat, what it
    says of itself, and the server's password it gave (PASS)."""

    nick: str
    ident: str
    realname: str
    password: str | None = field(default=None, repr=False)


@record
class UserModesSet(Event):
    """The reply to :class:`UserModes`: the modes now on."""

    id: Any
    modes: str
    add: str = ""
    remove: str = ""

    def text_line(self) -> str:
        return f"your modes: +{self.modes}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "ok", "id": self.id, "modes": self.modes}


@record
class Echo(Event):
    """An IRC client's own private message, shown back to it with echo-message (IRC
    only: the hub sends it to IRC senders)."""

    message: Any  # a ChatMessage

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}


@record
class IsAway(Event):
    """A private message reached ``name``, who is away: its away message."""

    name: str
    message: str

    def text_line(self) -> str:
        return f"{one_line(self.name)} is away: {one_line(self.message)}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "away", "name": self.name, "message": one_line(self.message)}


@record
class WallopsMessage(Event):
    """An IRC operator's WALLOPS, to the users with the user mode ``w``."""

    name: str
    addr: str
    text: str

    def text_line(self) -> str:
        return f"wallops from {one_line(self.name)}: {one_line(self.text)}"

    def json_fields(self) -> dict[str, Any]:
        return {"type": "wallops", "name": self.name, "text": self.text}


@record
class Described(Event):
    """A user's away message or real name changed: told to the IRC users who share a
    channel with it and asked to know (away-notify, setname); IRC only."""

    name: str
    addr: str
    away: str | None = None
    realname: str | None = None  # set for a SETNAME, None for an AWAY

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}


@record
class AccountChanged(Event):
    """A user already online logged in to ``account`` (None: logged out): told to the
    IRC users who share the lobby or a room with it and negotiated account-notify (an
    IRC ``ACCOUNT``); IRC only."""

    name: str
    addr: str
    account: str | None

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}
