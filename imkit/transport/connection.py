"""One client's transport: its link, its reader (the pump) and its writer.

The reader receives bytes, feeds the protocol and hands each command to the hub; before
each command it honours the rate limit (:class:`TokenBucket`), backpressure
(:class:`~imkit.transport.backpressure.Congestion`) and the pace at which the client
reads the replies it asked for (:meth:`~imkit.hub.outbox.Outbox.put_reply`). The writer
sends what the flusher could not (a full socket buffer) and, at the end, the last lines
(a bye).
"""

from __future__ import annotations

import hmac
import logging
import socket
import time
from asyncio import Future
from collections.abc import Callable
from functools import partial
from typing import TypeGuard

import anyio
import anyio.lowlevel

from imkit.hub.core import Hub
from imkit.hub.credentials import Logins
from imkit.hub.members import Member
from imkit.protocol import (
    BAD_REQUEST,
    LOGIN_REQUIRED,
    UNAUTHORIZED,
    Authenticate,
    Bye,
    Command,
    Error,
    Hello,
    Invalid,
    Login,
    Mode,
    Passwd,
    RequestId,
)
from imkit.transport.backpressure import Congestion
from imkit.transport.irc import admit_irc
from imkit.transport.links import LINK_ERRORS, RECV_SIZE, Link, SocketLink, TooLate

log = logging.getLogger("imkit.server")

# How long a closing connection may take to write its last lines (bye, a kick reason)
# to a client that is still reading; past it the socket is closed regardless.
DRAIN_TIMEOUT = 5.0
# After our last byte, read and discard what the client still sends for this long, so
# that closing does not reset the connection before the client has read the bye.
LINGER_TIMEOUT = 2.0
# A client whose reading side ended waits at most this long for the replies it is owed
# to come back (on a cluster node, through Redis: milliseconds; a command that takes
# 2 s, COMMAND_TIMEOUT, counts as failed and ends the wait itself).
ANSWER_TIMEOUT = 5.0
# Commands the reader awaits itself (a password is checked in a thread) rather than
# handing them to the hub; a hello only when it carries a login.
_AWAITED = frozenset({Login, Passwd, Hello})
LOGIN_FIRST = "log in first (text: login|NAME|PASSWORD; JSON: a login request)"
HELLO_FIRST = "send a hello first"


def is_login(command: Command) -> TypeGuard[Login | Hello]:
    """A login: ``login|NAME|PASSWORD``, a login request, or a hello that carries one."""
    return isinstance(command, Login) or (isinstance(command, Hello) and bool(command.login))


class TokenBucket:
    """A client's allowance of lines: ``rate`` per second, saved up to ``burst``.

    :meth:`take` says how long to wait before the next line may be handled. The reader
    sleeps that long and reads nothing meanwhile, so a flooder is slowed down by TCP's
    own flow control: nothing it sent is dropped.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.stamp = now

    def try_take(self, now: float) -> bool:
        """Take a line's allowance only if it is there now (never into debt)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        if tokens < 1:
            return False
        self.tokens, self.stamp = tokens - 1, now
        return True

    def take(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        # In debt: the wait is exactly what pays the debt back.
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Connection:
    """The transport half of one client: its link, reader, writer and outbox."""

    __slots__ = (
        "link",
        "member",
        "outbox",
        "hub",
        "bucket",
        "congestion",
        "password",
        "auth_timeout",
        "logins",
        "join_at_hello",
        "writer_busy",
        "closed",
        "_writer_wake",
        "_read_scope",
    )

    def __init__(
        self,
        link: Link,
        member: Member,
        hub: Hub,
        *,
        schedule_flush: Callable[[Connection], None],
        congestion: Congestion,
        bucket: TokenBucket | None = None,
        password: str | None = None,
        auth_timeout: float = 5.0,
        logins: Logins,
        join_at_hello: bool = False,
    ) -> None:
        self.link = link
        self.member = member
        self.outbox = member.outbox
        self.hub = hub
        self.bucket = bucket
        self.congestion = congestion
        self.password = password
        self.auth_timeout = auth_timeout
        self.logins = logins
        # A WebSocket client (imkit.web) joins at its hello, not when it connects.
        self.join_at_hello = join_at_hello
        self.writer_busy = False  # the writer task owns the socket until it is done
        self.closed = False
        self._writer_wake = anyio.Event()
        self._read_scope = anyio.CancelScope()
        # A partial, not a method that calls another: this runs once per recipient.
        self.outbox.on_ready = partial(schedule_flush, self)
        self.outbox.on_close = self._on_close
        self.outbox.on_congested = congestion.add

    def _on_close(self) -> None:
        # The hub removed this client (kick, idle, slow consumer, shutdown): stop reading
        # and let the writer send what is left. Nobody waits for a closed outbox.
        self._read_scope.cancel()
        self.congestion.relieve(self.outbox)
        self._wake_writer()

    def _wake_writer(self) -> None:
        self.writer_busy = True
        self._writer_wake.set()

    # ------------------------------------------------------------------ writing

    def flush_nowait(self) -> None:
        """Write what is queued without waiting; leave the rest to the writer task."""
        data = self.take_for_flush()
        if data:
            try:
                sent: int | OSError = self.link.try_send(data)
            except OSError as error:
                sent = error
            self.flushed(data, sent)

    def take_for_flush(self) -> bytes:
        """What the flusher may write now (b"" while the writer task owns the socket)."""
        if self.writer_busy or self.closed:
            return b""
        return self.outbox.take()

    def flushed(self, data: bytes, sent: int | OSError) -> None:
        """The outcome of the flusher's non-blocking write of ``data``."""
        if isinstance(sent, OSError):
            self._read_scope.cancel()  # broken: the reader ends this connection
            return
        self.hub.stats.bytes_out += sent
        outbox = self.outbox
        outbox.wrote(data, sent)
        if sent < len(data):
            self._wake_writer()
        if outbox.congested and outbox.size <= outbox.low_water:
            self.congestion.relieve(outbox)

    async def _write_loop(self) -> None:
        outbox, link, stats = self.outbox, self.link, self.hub.stats
        try:
            while True:
                await self._writer_wake.wait()
                self._writer_wake = anyio.Event()
                if outbox.closed and not outbox.drain:
                    # One attempt at the bye, no more.
                    stats.bytes_out += link.try_send(outbox.take())
                    return
                while data := outbox.take():
                    # What the socket does not take goes back into the outbox, so that
                    # its size (and so congestion and the limit) counts it.
                    sent = await link.write(data)
                    stats.bytes_out += sent
                    outbox.wrote(data, sent)
                    if outbox.congested and outbox.size <= outbox.low_water:
                        self.congestion.relieve(outbox)
                self.writer_busy = False
                if outbox.closed:
                    return
        except LINK_ERRORS as error:
            addr = self.member.addr
            log.debug(
                "%s: write failed: %s",
                addr,
                error,
                extra={"event": "write_failed", "addr": addr, "reason": str(error)},
            )
            self._read_scope.cancel()

    # ------------------------------------------------------------------ reading

    async def run(self) -> None:
        hub, member = self.hub, self.member
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._write_loop)
                    ended = False  # True at the end of the stream (not a reset)
                    with self._read_scope:
                        first = await self._admit()
                        if first is not None:
                            ended = await self._read_loop(first)
                    if ended and not self.outbox.closed:
                        await self._answered()
                    # Whatever ended the reading, the writer gets a bounded time to finish.
                    scope.deadline = anyio.current_time() + DRAIN_TIMEOUT
                    if not self.outbox.closed:  # the client left on its own
                        hub.stats.closed_by_client += 1
                        hub.leave(member)
                        # At the end of its stream it may still be reading (a half-close):
                        # what it is owed is written first. After a reset, nothing is.
                        self.outbox.close(drain=ended)
        finally:
            self.closed = True
            hub.leave(member)
            self.congestion.relieve(self.outbox)
            # Not shielded: if the server is giving up on us, aclose still closes.
            drained = self.outbox.drain and not scope.cancelled_caught
            await self.link.aclose(LINGER_TIMEOUT if drained else 0)

    async def _answered(self) -> None:
        """The client sent its last line: wait (bounded) until the replies to its lines
        are in its outbox, then it is offline (Hub.leave_when_answered). On a cluster
        node they come back through Redis after its end of stream (issue 26, item 7)."""
        self._read_scope = anyio.CancelScope()  # a kick or the shutdown ends the wait
        with self._read_scope, anyio.move_on_after(ANSWER_TIMEOUT):
            answered = anyio.Event()
            self.hub.leave_when_answered(self.member, answered.set)
            await answered.wait()

    async def _read_loop(self, commands: list[Command]) -> bool:
        """The pump: receive, feed the protocol, hand each command to the hub. True when
        the stream ended (the client may still be reading), False when it broke."""
        link, wire, member, hub = self.link, self.member.wire, self.member, self.hub
        bucket, congested, stats = self.bucket, self.congestion.outboxes, hub.stats
        outbox, pace = self.outbox, self.outbox.reply_pace
        readable, step = None, None
        if isinstance(link, SocketLink) and (readable := link.readable) is not None:
            step = self._reader_step(link.sock)
        try:
            while True:
                for command in commands:
                    if congested:  # someone who keeps up is behind: let it catch up
                        await self.congestion.wait()
                        member.last_active = time.monotonic()  # held back, not idle
                    if outbox.owed > pace:  # its replies first, at the pace it reads them
                        await self._replies_read()
                        member.last_active = time.monotonic()
                    if bucket is not None and (delay := bucket.take(time.monotonic())):
                        await anyio.sleep(delay)
                        member.last_active = time.monotonic()  # slowed down, not idle
                    if command.__class__ in _AWAITED:
                        await self._awaited(command)
                    else:
                        hub.handle(member, command)
                if step is not None and readable is not None and not link.maybe_more:
                    # Reading goes on in a loop callback until something must wait.
                    handed: list[Command] | None = await readable.pump(step)
                    if handed is None:
                        return True
                    commands = handed
                    continue
                if link.maybe_more:
                    # More is waiting already: let the flusher write what this read
                    # queued before reading on, so fan-out interleaves with writing.
                    await anyio.lowlevel.checkpoint()
                data = await link.receive()
                if not data:
                    return True
                stats.bytes_in += len(data)
                lines_before = wire.lines_received
                commands = wire.receive_data(data)
                if wire.lines_received != lines_before:
                    member.last_active = time.monotonic()
        except LINK_ERRORS as error:
            log.debug(
                "%s: connection lost: %s",
                member.addr,
                error,
                extra={"event": "connection_lost", "addr": member.addr, "reason": str(error)},
            )
            return False

    def _reader_step(self, sock: socket.socket) -> Callable[[Future[list[Command] | None]], None]:
        """The reader as a loop callback, run each time the socket is readable (asyncio,
        plain sockets; :meth:`LoopReadable.pump`): receive and handle each line at once,
        without waking the reader task (docs/performance.md). What must wait (held back
        by a congested outbox or by its own replies not yet read, slowed by the rate
        limit, a login, a password change or a hello) goes back to the task, with the
        commands from it on; None at end of stream."""
        member, hub, wire, stats = self.member, self.hub, self.member.wire, self.hub.stats
        congested, bucket, monotonic = self.congestion.outboxes, self.bucket, time.monotonic
        handle, awaited = hub.handle, _AWAITED
        outbox, pace = self.outbox, self.outbox.reply_pace

        def step(waiter: Future[list[Command] | None]) -> None:
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as error:  # the task ends the connection, as for its own reads
                waiter.set_exception(error)
                return
            if not data:
                waiter.set_result(None)
                return
            try:
                stats.bytes_in += len(data)
                lines_before = wire.lines_received
                commands = wire.receive_data(data)
                if wire.lines_received != lines_before:
                    member.last_active = monotonic()
                for index, command in enumerate(commands):
                    if (
                        congested
                        or command.__class__ in awaited
                        or outbox.owed > pace
                        or (bucket is not None and not bucket.try_take(monotonic()))
                    ):
                        waiter.set_result(commands[index:])
                        return
                    handle(member, command)
                    if waiter.done():  # cancelled meanwhile: this client was removed
                        return
            except Exception as error:  # a bug: raised in the task, as it would have been
                if not waiter.done():
                    waiter.set_exception(error)
                else:  # pragma: no cover - the client was removed meanwhile: only log it
                    log.exception("reading failed", extra={"event": "read_failed"})

        return step

    async def _replies_read(self) -> None:
        """Wait until the client has read most of the replies it asked for (a page of
        history, who is online, its kept messages): a client that asks faster than it
        reads is held back, as the rate limit holds back one that sends too fast,
        rather than dropped or let to pile up replies in memory."""
        outbox = self.outbox
        while outbox.owed > outbox.reply_pace and not outbox.closed:
            read = anyio.Event()
            outbox.on_replies_read = read.set
            await read.wait()

    async def _awaited(self, command: Command) -> None:
        """A login or a password change: checked before the next line is handled."""
        if not self.member.online:
            return
        if is_login(command):
            await self.logins.login(self.member, command)
        elif isinstance(command, Passwd):
            await self.logins.passwd(self.member, command)
        else:
            self.hub.handle(self.member, command)

    async def _admit(self) -> list[Command] | None:
        """Until the client may chat: the server's password (--password), then a login
        (--accounts-only), both within ``auth_timeout`` of connecting. Returns the
        commands that came after them, the client joined; None when it was refused.
        Until then the client receives nothing but its replies, and is not online."""
        if self.join_at_hello:
            return await self._admit_at_hello()
        if self.member.wire.mode is Mode.IRC:  # registration first (imkit.transport.irc)
            return await admit_irc(self)
        accounts_only = self.logins.accounts_only
        if self.password is None and not accounts_only:
            self.hub.join(self.member)
            return []
        # Only waiting for lines is bounded: a login read in time is checked however
        # long the queue of passwords to hash is (1,000 clients after a restart).
        deadline = anyio.current_time() + self.auth_timeout
        commands: list[Command] | None = []
        authenticated = self.password is None
        try:
            if self.password is not None:
                commands = await self._authenticate(self.password, deadline)
                authenticated = commands is not None
                if commands is not None and not accounts_only:
                    self.hub.join(self.member)
            if commands is not None and accounts_only:
                commands = await self._await_login(commands, deadline)
            return commands
        except TooLate:
            pass
        if not authenticated:
            self._refuse(None, f"no password received within {self.auth_timeout:g} seconds")
        else:
            why = f"no login within {self.auth_timeout:g} seconds"
            self.hub.stats.refused_unauthorized += 1
            self.outbox.close(self.member.wire.encode(Bye("login_required", why)))
        return None

    async def _admit_at_hello(self) -> list[Command] | None:
        """A WebSocket client joins at its hello: with --password the hello carries it,
        with a login it joins as the account's user (--accounts-only: it must). Anything
        before gets an error reply; no hello within ``auth_timeout`` closes it. Returns
        the commands from the hello on (a hello without a login is among them, for its
        welcome), the client joined; None when it was refused or left."""
        member, hub, password = self.member, self.hub, self.password
        commands: list[Command] | None = []
        deadline = anyio.current_time() + self.auth_timeout  # for the hello, not its login
        try:
            while commands is not None:
                for index, command in enumerate(commands):
                    if not isinstance(command, Hello):
                        if isinstance(command, Invalid):
                            hub.send(member, Error(command.id, command.code, command.message))
                        else:
                            hub.send(member, Error(command.id, BAD_REQUEST, HELLO_FIRST))
                        continue
                    offered = command.password
                    if password is not None and not (
                        offered is not None
                        and hmac.compare_digest(offered.encode(), password.encode())
                    ):
                        wrong = (
                            "wrong password" if offered is not None else "a password is required"
                        )
                        self._refuse(command.id, wrong)
                        return None
                    if command.login is not None:
                        if await self.logins.login(member, command):
                            return commands[index + 1 :]
                    elif self.logins.accounts_only:
                        hub.send(member, Error(command.id, LOGIN_REQUIRED, LOGIN_FIRST))
                    else:
                        member.last_active = time.monotonic()
                        hub.join(member)
                        return commands[index:]
                    if self.outbox.closed:
                        return None
                commands = await self.receive_commands(deadline)
            return None
        except TooLate:
            pass
        if password is not None:
            self._refuse(None, f"no password received within {self.auth_timeout:g} seconds")
        elif self.logins.accounts_only:
            why = f"no login within {self.auth_timeout:g} seconds"
            hub.stats.refused_unauthorized += 1
            self.outbox.close(member.wire.encode(Bye("login_required", why)))
        else:
            why = f"no hello within {self.auth_timeout:g} seconds"
            self.outbox.close(member.wire.encode(Bye("idle", why)))
        return None

    async def receive_commands(self, deadline: float) -> list[Command] | None:
        """The commands of the next bytes received before the client is in (its
        password, login, hello or IRC registration: imkit.transport.irc too); None when
        the connection ended; :class:`~imkit.transport.links.TooLate` past ``deadline``."""
        data = b""
        with anyio.move_on_after(deadline - anyio.current_time()) as waiting:
            try:
                data = await self.link.receive()
            except LINK_ERRORS:
                return None
        if waiting.cancelled_caught:
            raise TooLate
        if not data:
            return None
        self.hub.stats.bytes_in += len(data)
        return self.member.wire.receive_data(data)

    async def _authenticate(self, password: str, deadline: float) -> list[Command] | None:
        """Wait for the password; return the commands that came with it (a hello among
        them, which still gets its welcome), or None when it was refused."""
        commands: list[Command] | None = []
        while not commands:
            commands = await self.receive_commands(deadline)
            if commands is None:
                return None
        first = commands[0]
        offered = first.password if isinstance(first, Authenticate | Hello) else None
        if offered is not None and hmac.compare_digest(offered.encode(), password.encode()):
            return commands if isinstance(first, Hello) else commands[1:]
        wrong = "wrong password" if offered is not None else "a password is required"
        self._refuse(first.id if isinstance(first, Hello) else None, wrong)
        return None

    async def _await_login(self, commands: list[Command], deadline: float) -> list[Command] | None:
        """--accounts-only: answer everything but a login with login_required until a
        login works (it joins the client); the commands after it, or None."""
        member, hub = self.member, self.hub
        while True:
            for index, command in enumerate(commands):
                if is_login(command):
                    if await self.logins.login(member, command):
                        return commands[index + 1 :]
                elif isinstance(command, Invalid):  # a malformed login line among them
                    hub.send(member, Error(command.id, command.code, command.message))
                elif not isinstance(command, Authenticate):
                    hub.send(member, Error(command.id, LOGIN_REQUIRED, LOGIN_FIRST))
                if self.outbox.closed:
                    return None
            received = await self.receive_commands(deadline)
            if received is None:
                return None
            commands = received

    def _refuse(self, hello_id: RequestId, why: str) -> None:
        # Never log the password offered: only that it was refused.
        self.hub.stats.refused_unauthorized += 1
        addr = self.member.addr
        log.warning(
            "%s: refused: %s",
            addr,
            why,
            extra={"event": "unauthorized", "addr": addr, "reason": why},
        )
        wire = self.member.wire
        if wire.mode is Mode.JSON:  # the hello is a request: it gets its reply
            self.outbox.put(wire.encode(Error(hello_id, UNAUTHORIZED, why)))
        self.outbox.close(wire.encode(Bye("unauthorized", why)))
