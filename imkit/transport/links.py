"""Links: a connected byte stream as a connection's reader and writer use it.

:class:`SocketLink` is a plain non-blocking socket (the fast path, which the flusher may
write to directly); :class:`StreamLink` is any anyio byte stream (TLS), written only by
its connection's writer task. Both raise only :data:`LINK_ERRORS`, which end one
connection and never the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc

T = TypeVar("T")

# One recv() takes at most this much; big enough for a burst of pipelined lines.
RECV_SIZE = 65536

# Errors that mean "this connection is over", whoever's fault it was.
LINK_ERRORS = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class TooLate(Exception):
    """Nothing came from the client before its deadline (a password, a login, an IRC
    registration: Connection.receive_commands)."""


class Link(Protocol):
    """A connected byte stream as the connection's reader and writer use it."""

    @property
    def maybe_more(self) -> bool:
        """True when the last receive filled its buffer: more may be waiting already."""

    def try_send(self, data: bytes) -> int:
        """Write what can be written now without waiting; return how many bytes."""

    async def write(self, data: bytes) -> int:
        """Write some of ``data``, waiting until at least one byte can go; how many went."""

    async def receive(self) -> bytes:
        """The next bytes received; b"" at end of stream."""

    async def aclose(self, linger: float) -> None:
        """Close; with ``linger`` > 0, first end our side and wait for the peer's EOF."""


class LoopReadable:
    """Waits until a socket is readable, on the asyncio event loop.

    ``anyio.wait_readable`` registers the socket with the loop for every wait and
    removes it afterwards: two ``epoll_ctl`` calls per message, which measured as 45 %
    of the server's time under load (docs/performance.md). This registration instead
    stays while the reader keeps coming back; it is dropped only when the socket
    becomes readable with nobody waiting (a paced or busy reader), so that a readable
    socket nobody reads cannot spin the loop, and taken up again at the next wait.
    A readiness report that comes twice before the waiter has run is harmless here,
    where a future's ``set_result`` used as the callback would raise InvalidStateError.

    :meth:`pump` is the same wait with a callback that runs each time the socket is
    readable and decides itself when the wait is over: the connection's reader uses it
    to receive and handle lines without a task switch (docs/performance.md).
    """

    __slots__ = ("_loop", "_fd", "_waiter", "_registered", "_step")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._fd = sock.fileno()
        self._waiter: asyncio.Future[Any] | None = None
        self._step: Callable[[asyncio.Future[Any]], None] | None = None
        self._registered = False

    @classmethod
    def for_socket(cls, sock: socket.socket) -> LoopReadable | None:
        """One for ``sock`` on asyncio; None on any other anyio backend."""
        try:
            return cls(asyncio.get_running_loop(), sock)
        except RuntimeError:  # pragma: no cover - not asyncio: CI tests the asyncio backend only
            return None

    async def wait(self) -> None:
        await self.pump(None)

    async def pump(self, step: Callable[[asyncio.Future[T]], None] | None) -> T:
        """Until the wait is over: with ``step`` None, until the socket is readable;
        else ``step(waiter)`` runs each time it is readable and ends the wait by
        setting the waiter's result (or exception)."""
        waiter: asyncio.Future[T] = self._loop.create_future()
        self._waiter = waiter
        self._step = step
        if not self._registered:
            self._loop.add_reader(self._fd, self._on_readable)
            self._registered = True
        try:
            return await waiter
        finally:
            self._waiter = self._step = None

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            self.close()
        elif not waiter.done():
            if self._step is None:
                waiter.set_result(None)
            else:
                self._step(waiter)

    def close(self) -> None:
        if self._registered:
            self._registered = False
            self._loop.remove_reader(self._fd)


async def wait_readable(sock: socket.socket, readable: LoopReadable | None) -> None:
    """Wait through ``readable`` when there is one (asyncio), else through anyio."""
    if readable is not None:
        await readable.wait()
    else:
        await anyio.wait_readable(sock)


class SocketLink:
    """A plain socket driven by readiness waits: the loop's own on asyncio (see
    :class:`LoopReadable`), anyio's on any other backend."""

    __slots__ = ("sock", "maybe_more", "_readable")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.maybe_more = True  # False after a short read: wait before the next recv
        self._readable = LoopReadable.for_socket(sock)

    @property
    def readable(self) -> LoopReadable | None:
        """The loop's readiness for this socket (None when not on asyncio)."""
        return self._readable

    def try_send(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    async def write(self, data: bytes) -> int:
        while not (sent := self.try_send(data)):
            await anyio.wait_writable(self.sock)
        return sent

    async def send(self, data: bytes) -> None:
        """Write all of ``data`` (the admin socket's replies)."""
        while data:
            data = data[await self.write(data) :]

    async def receive(self) -> bytes:
        if not self.maybe_more:
            await wait_readable(self.sock, self._readable)
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                await wait_readable(self.sock, self._readable)
                continue
            # A full read suggests more is waiting; a short one that the buffer is empty,
            # so skip the recv that would only fail with EAGAIN.
            self.maybe_more = len(data) == RECV_SIZE
            return data

    async def aclose(self, linger: float) -> None:
        try:
            if linger > 0:
                self.sock.shutdown(socket.SHUT_WR)
                with anyio.move_on_after(linger):
                    while await self.receive():
                        pass
        except OSError:
            pass
        finally:
            if self._readable is not None:
                self._readable.close()
            self.sock.close()


class StreamLink:
    """Any anyio byte stream (a TLS stream): every write goes through the writer task."""

    __slots__ = ("stream",)

    maybe_more = False  # the stream reads ahead by itself

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream

    def try_send(self, data: bytes) -> int:
        return 0

    async def write(self, data: bytes) -> int:
        await self.stream.send(data)
        return len(data)

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive(RECV_SIZE)
        except anyio.EndOfStream:
            return b""

    async def aclose(self, linger: float) -> None:
        with anyio.move_on_after(linger, shield=True):
            await self.stream.aclose()


def format_addr(peer: object) -> str:
    """``ip:port`` as the seed prints it (``[ip]:port`` for IPv6). An IPv4 client of a
    dual-stack listener (``--host ::``) comes as ``::ffff:a.b.c.d``: it is shown as the
    IPv4 address it is, as the limits count it and bans match it."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), peer[1]
        if host.startswith("::ffff:"):
            with contextlib.suppress(ValueError):
                mapped = ipaddress.IPv6Address(host).ipv4_mapped
                host = str(mapped) if mapped is not None else host
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peer) or "unix"
