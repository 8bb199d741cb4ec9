"""One client's transport: its link, its reader (the pump) and its writer.

The reader receives bytes, feeds the protocol and hands each command to the hub; before
each command it honours the rate limit (:class:`TokenBucket`) and backpressure
(:class:`~imkit.transport.backpressure.Congestion`). The writer sends what the flusher
could not (a full socket buffer) and, at the end, the last lines (a bye).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from functools import partial

import anyio
import anyio.lowlevel

from imkit.hub import Hub, Member
from imkit.protocol import UNAUTHORIZED, Authenticate, Bye, Command, Error, Hello, Mode, RequestId
from imkit.transport.backpressure import Congestion
from imkit.transport.links import LINK_ERRORS, Link

log = logging.getLogger("imkit.server")

# How long a closing connection may take to write its last lines (bye, a kick reason)
# to a client that is still reading; past it the socket is closed regardless.
DRAIN_TIMEOUT = 5.0
# After our last byte, read and discard what the client still sends for this long, so
# that closing does not reset the connection before the client has read the bye.
LINGER_TIMEOUT = 2.0


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
    ) -> None:
        self.link = link
        self.member = member
        self.outbox = member.outbox
        self.hub = hub
        self.bucket = bucket
        self.congestion = congestion
        self.password = password
        self.auth_timeout = auth_timeout
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
        if sent < len(data):
            outbox.unget(data[sent:])
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
                    outbox.unget(data[sent:])
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
                    with self._read_scope:
                        if self.password is None:
                            hub.join(member)
                            await self._read_loop([])
                        elif (first := await self._authenticate(self.password)) is not None:
                            await self._read_loop(first)
                    # Whatever ended the reading, the writer gets a bounded time to finish.
                    scope.deadline = anyio.current_time() + DRAIN_TIMEOUT
                    if not self.outbox.closed:  # the client left on its own
                        hub.stats.closed_by_client += 1
                        hub.leave(member)
                        self.outbox.close(drain=False)
        finally:
            self.closed = True
            hub.leave(member)
            self.congestion.relieve(self.outbox)
            # Not shielded: if the server is giving up on us, aclose still closes.
            drained = self.outbox.drain and not scope.cancelled_caught
            await self.link.aclose(LINGER_TIMEOUT if drained else 0)

    async def _read_loop(self, commands: list[Command]) -> None:
        """The pump: receive, feed the protocol, hand each command to the hub."""
        link, wire, member, hub = self.link, self.member.wire, self.member, self.hub
        bucket, congested, stats = self.bucket, self.congestion.outboxes, hub.stats
        try:
            while True:
                for command in commands:
                    if congested:  # someone who keeps up is behind: let it catch up
                        await self.congestion.wait()
                        member.last_active = time.monotonic()  # held back, not idle
                    if bucket is not None and (delay := bucket.take(time.monotonic())):
                        await anyio.sleep(delay)
                        member.last_active = time.monotonic()  # slowed down, not idle
                    hub.handle(member, command)
                if link.maybe_more:
                    # More is waiting already: let the flusher write what this read
                    # queued before reading on, so fan-out interleaves with writing.
                    await anyio.lowlevel.checkpoint()
                data = await link.receive()
                if not data:
                    return
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

    async def _authenticate(self, password: str) -> list[Command] | None:
        """Wait for the password; on success join and return the commands that came
        with it (a hello among them, which still gets its welcome). Until then the
        client receives nothing and is not online."""
        wire = self.member.wire
        with anyio.move_on_after(self.auth_timeout):
            try:
                commands: list[Command] = []
                while not commands:
                    data = await self.link.receive()
                    if not data:
                        return None
                    self.hub.stats.bytes_in += len(data)
                    commands = wire.receive_data(data)
            except LINK_ERRORS:
                return None
            first = commands[0]
            offered = first.password if isinstance(first, Authenticate | Hello) else None
            if offered is not None and hmac.compare_digest(offered.encode(), password.encode()):
                self.hub.join(self.member)
                return commands if isinstance(first, Hello) else commands[1:]
            wrong = "wrong password" if offered is not None else "a password is required"
            self._refuse(first.id if isinstance(first, Hello) else None, wrong)
            return None
        self._refuse(None, f"no password received within {self.auth_timeout:g} seconds")
        return None

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
