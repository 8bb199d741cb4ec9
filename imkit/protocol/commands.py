"""What a client asks for: frozen dataclasses, one per request (bad input included, as an
:class:`Invalid` command carrying its error code)."""

from __future__ import annotations

from dataclasses import field

from imkit.protocol.codes import HISTORY_DEFAULT, PROTOCOL_VERSION, RequestId
from imkit.protocol.records import record


@record(kw_only=True)
class Command:
    """Something a client asked for. ``id`` is echoed in the reply (JSON mode only)."""

    id: RequestId = None


@record(kw_only=True)
class Hello(Command):
    version: int = PROTOCOL_VERSION
    name: str | None = None
    password: str | None = None  # the server's (--password)
    login: tuple[str, str] | None = field(default=None, repr=False)  # an account's name, password


@record(kw_only=True)
class Authenticate(Command):
    """The text-mode first line ``pass|SECRET``."""

    password: str


@record(kw_only=True)
class Login(Command):
    """``login|NAME|PASSWORD``: become the user of an account."""

    name: str
    password: str = field(repr=False)


@record(kw_only=True)
class Passwd(Command):
    """``passwd|OLD|NEW``: a logged-in user changes its own password."""

    old: str = field(repr=False)
    new: str = field(repr=False)


@record(kw_only=True)
class PublicMessage(Command):
    text: str
    notice: bool = False  # an IRC NOTICE: shown as one to IRC users, never answered


@record(kw_only=True)
class PrivateMessage(Command):
    to: str
    text: str
    notice: bool = False


@record(kw_only=True)
class Who(Command):
    room: str | None = None  # None: the lobby (everyone online, as in the seed)


@record(kw_only=True)
class Rename(Command):
    name: str


@record(kw_only=True)
class Ping(Command):
    pass


@record(kw_only=True)
class Invalid(Command):
    """A line that could not be understood; the hub replies with this error."""

    code: str
    message: str


@record(kw_only=True)
class History(Command):
    """Past public messages: the ``limit`` newest before msgid ``before`` (None: now);
    with ``with_``, the private conversation with that account instead; with ``query``,
    only those with every word of it (a search: imkit.rules.search)."""

    limit: int = HISTORY_DEFAULT
    before: str | None = None
    with_: str | None = None
    room: str | None = None  # a room's history (None: the lobby's)
    query: str | None = None


# ---------------------------------------------------------------------- rooms
# docs/rooms.md. ``room`` is the name as the client wrote it (checked by the parser to
# be a room's name); the hub finds the room by its key.


@record(kw_only=True)
class JoinRoom(Command):
    room: str
    key: str | None = field(default=None, repr=False)


@record(kw_only=True)
class PartRoom(Command):
    room: str
    reason: str | None = None


@record(kw_only=True)
class RoomMessage(Command):
    """A message to a room (the lobby's name too: then a plain lobby message)."""

    room: str
    text: str
    notice: bool = False


@record(kw_only=True)
class ListRooms(Command):
    pass


@record(kw_only=True)
class Topic(Command):
    """Ask for a room's topic (``topic`` None) or set it (\"\" clears it)."""

    room: str
    topic: str | None = None


@record(kw_only=True)
class RoomKick(Command):
    room: str
    name: str
    reason: str | None = None


@record(kw_only=True)
class Invite(Command):
    room: str
    name: str


@record
class ModeChange:
    """One change of a room's settings: ``+m``, ``-k``, ``+o NAME`` (IRC's channel
    modes, docs/rooms.md). ``arg`` is the name, key, limit or mask it needs."""

    flag: str  # one of imkit.rules.rooms.FLAGS
    on: bool
    arg: str | None = None


@record(kw_only=True)
class RoomMode(Command):
    """Change a room's settings; with no ``changes``, ask for them (``listing``: for
    its list of masks ``b`` bans, ``e`` ban exceptions or ``I`` invite exceptions)."""

    room: str
    changes: tuple[ModeChange, ...] = ()
    listing: str = ""
