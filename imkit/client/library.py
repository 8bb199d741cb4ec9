"""The async client library that ``imkit chat`` and ``imkit send`` are built on.

It speaks the JSON Lines mode of the imkit protocol (docs/protocol.md). Every request
waits for its reply and raises a :class:`~imkit.errors.ServerError` subclass carrying the
server's error code; pushed events (messages, presence, renames) are read with
:meth:`Client.events`, and past public messages with :meth:`Client.history`. A bot that
answers private messages::

    import anyio
    from imkit.client.library import ChatMessage, connect

    async def main() -> None:
        async with connect("127.0.0.1", 8888, name="echo-bot") as client:
            async for event in client.events():
                if isinstance(event, ChatMessage) and event.to == client.name:
                    await client.send(f"you said: {event.text}", to=event.sender)

    anyio.run(main)

When the server closes the connection (idle timeout, kick, shutdown) :meth:`Client.events`
and every request raise :class:`~imkit.errors.Disconnected`, whose ``reason`` is the bye
reason (``idle``, ``kicked``, ``shutdown``, ``replaced``, ...) or None when the connection
was lost.

Accounts: ``connect(..., login=(name, password))`` logs in with the hello (which works on
a server with ``--accounts-only`` too), :meth:`Client.login` later;
:attr:`Client.account` is the account logged in to. :meth:`Client.submit` tells whether
a private message was kept for an offline account (``Receipt.queued``).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.abc

from imkit.client.rooms import RoomRequests
from imkit.errors import Disconnected, ServerError, TimedOut, Unreachable
from imkit.protocol import DEFAULT_PORT as PROTOCOL_DEFAULT_PORT
from imkit.protocol import (
    HISTORY_DEFAULT,
    Bye,
    ChatMessage,
    ClientConnection,
    Command,
    Error,
    Event,
    Hello,
    History,
    HistoryPage,
    Joined,
    Login,
    LoginOk,
    ModesInfo,
    NameChange,
    Notice,
    Ok,
    Passwd,
    Ping,
    Pong,
    Presence,
    PrivateMessage,
    PublicMessage,
    Rename,
    RenameOk,
    RoomInfo,
    RoomJoin,
    RoomKicked,
    RoomList,
    RoomMessage,
    RoomOk,
    RoomPart,
    TopicInfo,
    UserInfo,
    UserList,
    Welcome,
    Who,
    encode_request,
)

__all__ = [
    "ChatMessage",
    "Client",
    "HistoryPage",
    "Joined",
    "NameChange",
    "Presence",
    "Receipt",
    "RoomInfo",
    "RoomJoin",
    "RoomKicked",
    "RoomPart",
    "TopicInfo",
    "UserInfo",
    "connect",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = PROTOCOL_DEFAULT_PORT
# How long connecting, and then each request, may take before TimedOut.
DEFAULT_TIMEOUT = 10.0
# Pushed events kept for the application before the client stops reading the socket
# (and so stops receiving replies too) until some are read; see connect().
DEFAULT_MAX_EVENTS = 10_000

_REPLY_TYPES = (Welcome, UserList, Pong, Ok, RenameOk, LoginOk, HistoryPage, Error)
_ROOM_REPLY_TYPES = (RoomOk, RoomList, ModesInfo)
# A reply with an id, an event without one: a join's reply and a logged-in account put
# back in a room; a topic asked for or set, and a topic change told to the members.
_REPLY_OR_EVENT_TYPES = (Joined, TopicInfo)
_Reply = (
    Welcome
    | UserList
    | Pong
    | Ok
    | RenameOk
    | LoginOk
    | HistoryPage
    | Error
    | RoomOk
    | RoomList
    | ModesInfo
    | Joined
    | TopicInfo
)
R = TypeVar("R", bound=Event)

_STREAM_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)

# The limit named by the error for a line the server could not read (docs/protocol.md:
# "line too long (the limit is N bytes); discarded").
_LINE_LIMIT = re.compile(r"the limit is (\d+) bytes")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The server's acknowledgement of a message (:meth:`Client.submit`).

    ``msgid``: the message's id (None from a server that gives none). ``queued``: True
    when it was a private message to a registered account that is offline; the server
    keeps it and delivers it when that account next logs in.
    """

    msgid: str | None
    queued: bool = False


class _Waiter:
    __slots__ = ("done", "reply", "size")

    def __init__(self, size: int) -> None:
        self.done = anyio.Event()
        self.reply: _Reply | None = None
        self.size = size  # bytes of the request's line, its newline not counted


class Client(RoomRequests):
    """A connection to an imkit server; get one from :func:`connect`. Its room requests
    (join, part, rooms, topic, ...) are :class:`imkit.client.rooms.RoomRequests`'."""

    def __init__(
        self, stream: anyio.abc.ByteStream, *, timeout: float, events: bool, max_events: int
    ) -> None:
        super().__init__()
        self.name = ""  # our current name on the server
        self.addr = ""  # our address as the server sees it
        self.server = ""  # the server's software, e.g. "imkit/0.1.0"
        self.account: str | None = None  # the account logged in to (then also our name)
        self.timeout = timeout
        self._stream = stream
        self._wire = ClientConnection()
        self._pending: dict[int, _Waiter] = {}
        self._next_id = 1
        self._keep_events = events
        self._event_in, self._event_out = anyio.create_memory_object_stream[Event](max_events)
        self._send_lock = anyio.Lock()
        self._closed: Disconnected | None = None
        self._last_notice: str | None = None

    # ------------------------------------------------------------------ requests

    async def send(
        self, text: str, to: str | None = None, *, room: str | None = None
    ) -> str | None:
        """Send a message to everyone (the lobby), privately to the user named ``to``,
        or to the ``room`` (``#name``) we are in (or any, if it takes messages from
        outside: ``-n``).

        Returns the message's msgid once the server has accepted it: for a public message,
        once it is stored (None from a server that gives no msgids); for a private one to
        an account that is offline, once it is kept for it (:meth:`submit` says which).
        Raises NoSuchUser, InvalidMessage, MailboxFull, ...; for a room ServerError
        ``not_in_room``, ``no_such_room``, ``muted`` (a moderated room, no voice);
        :class:`~imkit.errors.Unavailable` when the server cannot store it, with
        ``delivered`` True when the users online received it anyway (so it must not be
        sent again).
        """
        return (await self.submit(text, to, room=room)).msgid

    async def submit(self, text: str, to: str | None = None, *, room: str | None = None) -> Receipt:
        """As :meth:`send`, but returns the whole :class:`Receipt`: its ``queued`` is
        True when ``to`` is a registered account that is offline, so the message waits
        until it logs in (at most 100 wait: then MailboxFull)."""
        command: Command
        if to is not None and room is not None:
            raise ValueError("a message goes to a user or to a room, not both")
        if room is not None:
            command = RoomMessage(id=self._new_id(), room=room, text=text)
        elif to is not None:
            command = PrivateMessage(id=self._new_id(), to=to, text=text)
        else:
            command = PublicMessage(id=self._new_id(), text=text)
        reply = await self._request(command, Ok)
        return Receipt(reply.msgid, reply.queued is not None)

    async def history(
        self,
        limit: int = HISTORY_DEFAULT,
        before: str | None = None,
        *,
        with_: str | None = None,
        room: str | None = None,
    ) -> HistoryPage:
        """Past public messages: the ``limit`` (1 to 100) newest sent before the message
        whose msgid is ``before`` (None: the newest of all). With ``with_`` (an account's
        name), the private conversation between that account and ours instead (we must
        be logged in; only its two parties may read it). With ``room``, that room's
        messages (for its members: else ServerError ``not_in_room``).

        The page's ``messages`` are :class:`ChatMessage` objects, oldest first, each with
        its ``msgid`` and original ``time``; ``more`` is True when older ones are kept
        too (ask again with ``before`` set to the first message's msgid). Raises
        ServerError (``bad_request``) for a ``limit`` out of range or a ``before`` that
        is not a msgid, :class:`~imkit.errors.Unavailable` when history cannot be read.
        """
        if with_ is not None and room is not None:
            raise ValueError("history is of a conversation or of a room, not both")
        request = History(id=self._new_id(), limit=limit, before=before, with_=with_, room=room)
        return await self._request(request, HistoryPage)

    async def search(
        self,
        query: str,
        limit: int = HISTORY_DEFAULT,
        before: str | None = None,
        *,
        room: str | None = None,
    ) -> HistoryPage:
        """Past public messages with every word of ``query`` (whole words, case and
        accents ignored; docs/integrations.md, "Search"): the lobby's, or with ``room``
        that room's (for its members: else ServerError ``not_in_room``). The page is as
        :meth:`history`'s: the ``limit`` newest matches before ``before``, oldest first,
        ``more`` when older matches may be kept. Raises ServerError (``bad_request``) for
        a query without a word, :class:`~imkit.errors.Unavailable` when history cannot
        be read."""
        request = History(id=self._new_id(), limit=limit, before=before, room=room, query=query)
        return await self._request(request, HistoryPage)

    async def login(self, name: str, password: str) -> str:
        """Log in to the account ``name``; returns its name, which becomes ours (everyone
        sees it as a rename). Raises LoginFailed (wrong name or password: we stay as we
        were) or TooManyAttempts (too many failures from our address this minute).

        An older session of the same account is closed by the server (bye ``replaced``).
        """
        reply = await self._request(Login(id=self._new_id(), name=name, password=password), LoginOk)
        self.name = self.account = reply.name or name
        return self.name

    async def passwd(self, old: str, new: str) -> None:
        """Change our account's password from ``old`` to ``new``. Raises LoginRequired
        (not logged in), LoginFailed (``old`` is wrong) or ServerError (``bad_request``:
        ``new`` is not acceptable)."""
        await self._request(Passwd(id=self._new_id(), old=old, new=new), Ok)

    async def rename(self, name: str) -> str:
        """Take the name ``name``; returns it. Raises NameTaken, InvalidName,
        NameReserved (an account's name) or LoggedIn (a logged-in user keeps its name)."""
        reply = await self._request(Rename(id=self._new_id(), name=name), RenameOk)
        self.name = reply.name or name
        return self.name

    async def who(self, room: str | None = None) -> list[UserInfo]:
        """Who is online (the lobby's members), in order of arrival; with ``room``, that
        room's members, each with ``operator`` and ``voice``."""
        reply = await self._request(Who(id=self._new_id(), room=room), UserList)
        return list(reply.users)

    async def ping(self) -> float:
        """Round-trip time to the server in seconds (also resets the idle timer)."""
        start = time.perf_counter()
        await self._request(Ping(id=self._new_id()), Pong)
        return time.perf_counter() - start

    async def events(self) -> AsyncIterator[Event]:
        """Pushed events in order: :class:`ChatMessage` (``to`` is None when public;
        then ``room`` is its room, the lobby's too), :class:`Presence`,
        :class:`NameChange`, and the rooms' events (imkit.protocol.room_events):
        ``Joined`` (without an ``id``: a logged-in account put back in a room),
        ``RoomJoin``, ``RoomPart``, ``TopicInfo`` (a change), ``RoomKicked``,
        ``ModesChanged``, ``Invited``.

        Ends by raising :class:`~imkit.errors.Disconnected` when the connection closes.
        """
        async for event in self._event_out:
            yield event
        raise self._disconnected()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    # ----------------------------------------------------------------- internals

    def _new_id(self) -> int:
        request_id = self._next_id
        self._next_id += 1
        return request_id

    async def _request(self, command: Command, expected: type[R]) -> R:
        reply = await self._reply(command)
        if not isinstance(reply, expected):
            raise Disconnected(f"unexpected reply from the server: {reply!r}")
        return reply

    async def _reply(self, command: Command) -> Event:
        """Send ``command`` and wait for its reply; an error reply raises."""
        if self._closed is not None:
            raise self._closed
        assert isinstance(command.id, int)
        line = encode_request(command)
        waiter = _Waiter(len(line) - 1)
        try:
            try:
                async with self._send_lock:
                    # Registered in the order sent: see _waiter_for.
                    self._pending[command.id] = waiter
                    await self._stream.send(line)
                with anyio.fail_after(self.timeout):
                    await waiter.done.wait()
            except TimeoutError:
                message = f"timed out after {self.timeout:g}s waiting for the server"
                raise TimedOut(message) from None
            except _STREAM_ERRORS:
                await anyio.lowlevel.checkpoint()  # let the reader record why
                raise self._disconnected() from None
        finally:
            self._pending.pop(command.id, None)
        reply = waiter.reply
        if reply is None:
            raise self._disconnected()
        if isinstance(reply, Error):
            raise ServerError.from_reply(reply.code, reply.message, delivered=reply.delivered)
        return reply

    def _disconnected(self) -> Disconnected:
        return self._closed or Disconnected("the connection to the server was lost")

    async def _read_loop(self) -> None:
        """The one reader: replies go to their waiters, events to the event stream."""
        bye: Bye | None = None
        try:
            while bye is None:
                data = await self._stream.receive()
                for event in self._wire.receive_data(data):
                    self._follow_rooms(event)
                    if isinstance(event, _REPLY_TYPES + _ROOM_REPLY_TYPES) or (
                        isinstance(event, _REPLY_OR_EVENT_TYPES) and event.id is not None
                    ):
                        waiter = self._waiter_for(event)
                        if waiter is not None:
                            waiter.reply = event
                            waiter.done.set()
                    elif isinstance(event, Bye):
                        bye = event
                        break
                    elif isinstance(event, Notice):
                        self._last_notice = event.text
                    elif isinstance(event, NameChange) and event.reason == "conflict":
                        self.name = event.new  # a cluster gave our name away (docs/cluster.md)
                        if self._keep_events:
                            await self._event_in.send(event)
                    elif (
                        isinstance(event, NameChange)
                        and event.reason == "reserved"
                        and event.old == self.name
                    ):
                        self.name = event.new  # an account was made with our guest name
                        if self._keep_events:
                            await self._event_in.send(event)
                    elif self._keep_events:
                        await self._event_in.send(event)
        except (*_STREAM_ERRORS, anyio.EndOfStream):
            pass
        finally:
            self._close(bye)

    def _follow_rooms(self, event: Event) -> None:
        """Keep :attr:`rooms_joined` as the server tells it: a join's reply (or an
        account put back in a room at login), a kick of us, a part of us (a room
        removed by the administrator)."""
        if isinstance(event, Joined):
            self._entered(event.room)
        elif isinstance(event, RoomKicked | RoomPart) and event.name == self.name:
            self._left(event.room)

    def _waiter_for(self, reply: _Reply) -> _Waiter | None:
        if isinstance(reply.id, int):
            return self._pending.get(reply.id)
        if isinstance(reply, Error) and reply.id is None and self._pending:
            # The server could not read the request's id: its line was longer than the
            # limit the error names (this client sends nothing else it cannot read).
            # The server reads lines in order and answers most requests at once, but not
            # all: a public message's ok waits until it is stored, a history page until
            # it is read. So older requests may still be waiting, and the error answers
            # the oldest one whose line is over that limit.
            found = _LINE_LIMIT.search(reply.message)
            if found is not None:
                limit = int(found.group(1))
                for waiter in self._pending.values():
                    if waiter.size > limit:
                        return waiter
            return next(iter(self._pending.values()))  # a server that names no limit
        return None

    def _close(self, bye: Bye | None) -> None:
        if bye is not None:
            self._closed = Disconnected(bye.message or f"disconnected ({bye.reason})", bye.reason)
        elif not self.name and self._last_notice:  # refused before the welcome
            self._closed = Disconnected(self._last_notice)
        else:
            self._closed = Disconnected("the server closed the connection")
        for waiter in self._pending.values():
            waiter.done.set()
        self._event_in.close()

    async def _hello(
        self, name: str | None, password: str | None, login: tuple[str, str] | None
    ) -> None:
        hello = Hello(id=self._new_id(), name=name, password=password, login=login)
        welcome = await self._request(hello, Welcome)
        self.name, self.addr, self.server = welcome.name, welcome.addr, welcome.server
        if login is not None:
            self.account = welcome.account or welcome.name


def host_port(host: str, port: int) -> str:
    """``host:port`` for messages, an IPv6 address in brackets (``[::1]:8888``), as in
    URLs: without them the port reads as part of the address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ssl_context(tls: bool, cafile: str | None) -> ssl.SSLContext | None:
    if not tls and cafile is None:
        return None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise Unreachable(f"cannot load CA file {cafile}: {error}") from None


async def _open_stream(
    host: str, port: int, ssl_context: ssl.SSLContext | None
) -> anyio.abc.ByteStream:
    """Connect; every failure becomes one Unreachable with a sentence for people."""
    where = host_port(host, port)
    try:
        if ssl_context is None:
            return await anyio.connect_tcp(host, port)
        return await anyio.connect_tcp(
            host, port, ssl_context=ssl_context, tls_standard_compatible=False
        )
    except ssl.SSLCertVerificationError as error:
        message = f"TLS certificate of {where} not trusted: {error.verify_message}"
        raise Unreachable(message) from None
    except ssl.SSLError as error:
        raise Unreachable(f"TLS handshake with {where} failed: {error.reason or error}") from None
    except anyio.BrokenResourceError as error:
        cause = error.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = f"TLS certificate of {where} not trusted: {cause.verify_message}"
        else:
            message = f"TLS handshake with {where} failed: {cause or 'connection closed'}"
        raise Unreachable(message) from None
    except OSError as error:
        # anyio tries every address of the host and raises "All connection attempts
        # failed" from the real error (or a group of them): report the first real one.
        cause = error.__cause__
        if isinstance(cause, BaseExceptionGroup):
            cause = cause.exceptions[0]
        if isinstance(cause, OSError):
            error = cause
        reason = os.strerror(error.errno) if error.errno else str(error)
        if isinstance(error, socket.gaierror):
            reason = error.strerror or reason
        raise Unreachable(f"cannot connect to {where}: {reason}") from None


@asynccontextmanager
async def connect(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    name: str | None = None,
    password: str | None = None,
    login: tuple[str, str] | None = None,
    tls: bool = False,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - kept for every later request too
    events: bool = True,
    max_events: int = DEFAULT_MAX_EVENTS,
) -> AsyncIterator[Client]:
    """Connect, say hello (taking ``name`` if given) and yield the :class:`Client`.

    ``password`` is the server's (``imkit serve --password``). ``login``, an account's
    ``(name, password)``, logs in with the hello: the client then has that name and
    :attr:`Client.account`; it cannot go with ``name`` (a logged-in user keeps its
    account's name).

    ``tls`` (or a ``cafile`` with a private CA) connects with TLS and verifies the
    server's certificate. ``timeout`` bounds connecting and each request. With
    ``events=False`` pushed events are discarded (for senders that never read them);
    otherwise up to ``max_events`` wait for :meth:`Client.events`, and past that the
    client stops reading from the server until the application reads some.

    Raises :class:`~imkit.errors.Unreachable` or :class:`~imkit.errors.TimedOut` when no
    connection can be made, :class:`~imkit.errors.Disconnected` when the server refuses
    it (full, wrong password), ``NameTaken``/``InvalidName``/``NameReserved`` for a bad
    ``name``, and ``LoginFailed``/``TooManyAttempts`` for a ``login`` that failed.
    """
    if name is not None and login is not None:
        raise ValueError("connect() takes name or login, not both: a login takes its name")
    ssl_context = _ssl_context(tls, cafile)
    try:
        with anyio.fail_after(timeout):
            stream = await _open_stream(host, port, ssl_context)
    except TimeoutError:
        raise TimedOut(f"timed out connecting to {host_port(host, port)}") from None
    client = Client(stream, timeout=timeout, events=events, max_events=max_events)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client._read_loop)
            try:
                await client._hello(name, password, login)
                yield client
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The reader never raises, so the group holds the caller's own exception:
        # give it back unwrapped.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await anyio.aclose_forcefully(stream)
