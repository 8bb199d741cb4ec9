"""The anyio transport: listeners, one reader and one writer per connection, the idle
sweep, and shutdown.

This is the only module that touches chat sockets, and transport errors are translated
here, at one boundary: a connection that breaks ends that connection, never the server.

How bytes leave (the hot path): the hub queues bytes into a connection's
:class:`~imkit.hub.Outbox`, which tells the server it is ready. A single flusher task runs
once per scheduling round, after every reader that woke in that round has been handled,
and writes each ready outbox with one non-blocking ``send`` of everything queued. Lines
that arrive together therefore leave together, and a broadcast to N users costs N
syscalls and no task switches. Only what the kernel refuses (a full socket buffer) is
left to the connection's own writer task, which waits until the socket is writable; the
flusher never writes to a connection whose writer is busy, so order is kept.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from imkit import admin
from imkit.errors import ServeError
from imkit.hub import DEFAULT_MAX_QUEUE, Hub, Member, Outbox
from imkit.protocol import DEFAULT_MAX_LINE, ServerConnection

log = logging.getLogger("imkit.server")

DEFAULT_PORT = 8888
DEFAULT_IDLE_TIMEOUT = 60.0  # seconds, as in the seed

# One recv() takes at most this much; big enough for a burst of pipelined lines.
RECV_SIZE = 65536
# How long a closing connection may take to write its last lines (bye, a kick reason)
# to a client that is still reading; past it the socket is closed regardless.
DRAIN_TIMEOUT = 5.0
# After our last byte, read and discard what the client still sends for this long, so
# that closing does not reset the connection before the client has read the bye.
LINGER_TIMEOUT = 2.0
# On SIGTERM every client gets this long to receive its bye before the server exits.
SHUTDOWN_GRACE = 3.0
# The idle sweep runs at least this often, so a kick comes at most this late.
MAX_SWEEP_INTERVAL = 1.0


class Link(Protocol):
    """A connected byte stream as the connection's reader and writer use it."""

    def try_send(self, data: bytes) -> int:
        """Write what can be written now without waiting; return how many bytes."""

    async def send(self, data: bytes) -> None:
        """Write all of ``data``, waiting for the peer as needed."""

    async def receive(self) -> bytes:
        """The next bytes received; b"" at end of stream."""

    async def aclose(self, linger: float) -> None:
        """Close; with ``linger`` > 0, first end our side and wait for the peer's EOF."""


class SocketLink:
    """A plain socket driven with anyio's readiness waits (works on asyncio and trio)."""

    __slots__ = ("sock", "_maybe_more")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._maybe_more = True  # False after a short read: wait before the next recv

    def try_send(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                sent = 0
            view = view[sent:]
            if view:
                await anyio.wait_writable(self.sock)

    async def receive(self) -> bytes:
        if not self._maybe_more:
            await anyio.wait_readable(self.sock)
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            # A full read suggests more is waiting; a short one that the buffer is empty,
            # so skip the recv that would only fail with EAGAIN.
            self._maybe_more = len(data) == RECV_SIZE
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
            self.sock.close()


class StreamLink:
    """Any anyio byte stream (a TLS stream): every write goes through the writer task."""

    __slots__ = ("stream",)

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream

    def try_send(self, data: bytes) -> int:
        return 0

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive(RECV_SIZE)
        except anyio.EndOfStream:
            return b""

    async def aclose(self, linger: float) -> None:
        with anyio.move_on_after(linger, shield=True):
            await self.stream.aclose()


# Errors that mean "this connection is over", whoever's fault it was.
LINK_ERRORS = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


def format_addr(peer: object) -> str:
    """``ip:port`` as the seed prints it (``[ip]:port`` for IPv6)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer) or "unix"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # 0: never
    max_line: int = DEFAULT_MAX_LINE
    max_queue: int = DEFAULT_MAX_QUEUE
    admin_socket: str | None = None  # None: admin.default_path(port)


class Connection:
    """The transport half of one client: its link, reader, writer and outbox."""

    __slots__ = (
        "server",
        "link",
        "member",
        "outbox",
        "writer_busy",
        "closed",
        "_writer_wake",
        "_read_scope",
    )

    def __init__(self, server: Server, link: Link, member: Member) -> None:
        self.server = server
        self.link = link
        self.member = member
        self.outbox = member.outbox
        self.writer_busy = False  # the writer task owns the socket until it is done
        self.closed = False
        self._writer_wake = anyio.Event()
        self._read_scope = anyio.CancelScope()
        self.outbox.on_ready = self._on_ready
        self.outbox.on_close = self._on_close

    def _on_ready(self) -> None:
        self.server.schedule_flush(self)

    def _on_close(self) -> None:
        # The hub removed this client (kick, idle, slow consumer, shutdown): stop reading
        # and let the writer send what is left.
        self._read_scope.cancel()
        self._wake_writer()

    def _wake_writer(self) -> None:
        self.writer_busy = True
        self._writer_wake.set()

    def flush_nowait(self) -> None:
        """Write what is queued without waiting; leave the rest to the writer task."""
        if self.writer_busy or self.closed:
            return
        data = self.outbox.take()
        if not data:
            return
        try:
            sent = self.link.try_send(data)
        except OSError:
            self._read_scope.cancel()  # broken: the reader ends this connection
            return
        if sent < len(data):
            self.outbox.unget(data[sent:])
            self._wake_writer()

    async def run(self) -> None:
        server, member = self.server, self.member
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._write_loop)
                    server.hub.join(member)
                    with self._read_scope:
                        await self._read_loop()
                    # Whatever ended the reading, the writer gets a bounded time to finish.
                    scope.deadline = anyio.current_time() + DRAIN_TIMEOUT
                    if not self.outbox.closed:  # the client left on its own
                        server.hub.leave(member)
                        self.outbox.close(drain=False)
        finally:
            self.closed = True
            server.hub.leave(member)
            # Not shielded: if the server is giving up on us, aclose still closes.
            drained = self.outbox.drain and not scope.cancelled_caught
            await self.link.aclose(LINGER_TIMEOUT if drained else 0)

    async def _read_loop(self) -> None:
        link, wire, member, hub = self.link, self.member.wire, self.member, self.server.hub
        try:
            while True:
                data = await link.receive()
                if not data:
                    return
                lines_before = wire.lines_received
                commands = wire.receive_data(data)
                if wire.lines_received != lines_before:
                    member.last_active = time.monotonic()
                for command in commands:
                    hub.handle(member, command)
        except LINK_ERRORS as error:
            log.debug("%s: connection lost: %s", member.addr, error)

    async def _write_loop(self) -> None:
        outbox, link = self.outbox, self.link
        try:
            while True:
                await self._writer_wake.wait()
                self._writer_wake = anyio.Event()
                if outbox.closed and not outbox.drain:
                    self.link.try_send(outbox.take())  # one attempt at the bye, no more
                    return
                while data := outbox.take():
                    await link.send(data)
                self.writer_busy = False
                if outbox.closed:
                    return
        except LINK_ERRORS as error:
            log.debug("%s: write failed: %s", self.member.addr, error)
            self._read_scope.cancel()


class Server:
    """An imkit chat server. ``await Server(config).serve()`` runs it until :meth:`stop`."""

    def __init__(self, config: ServerConfig, hub: Hub | None = None) -> None:
        self.config = config
        self.hub = hub if hub is not None else Hub()
        self.addresses: list[str] = []
        self.connections: set[Connection] = set()
        self._flush_queue: list[Connection] = []
        self._flush_wanted = anyio.Event()
        self._flush_pending = False
        self._stop = anyio.Event()
        self.stopped = anyio.Event()  # set when serve() has finished
        self.started_at = time.monotonic()
        self._listener: MultiListener[anyio.abc.SocketStream] | None = None
        self.admin_socket: admin.AdminSocket | None = None

    # ----------------------------------------------------------------- flushing

    def schedule_flush(self, connection: Connection) -> None:
        self._flush_queue.append(connection)
        if not self._flush_pending:
            self._flush_pending = True
            self._flush_wanted.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted = anyio.Event()
            self._flush_pending = False
            ready, self._flush_queue = self._flush_queue, []
            for connection in ready:
                connection.flush_nowait()

    # ---------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Ask :meth:`serve` to say goodbye to everyone and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def listen(self) -> None:
        """Bind the chat port and the admin socket; :class:`ServeError` when impossible.

        :meth:`serve` calls it when it was not called before; calling it first keeps a
        startup error out of the caller's task group.
        """
        host, port = self.config.host, self.config.port
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
        for sub in listener.listeners:
            self.addresses.append(format_addr(sub.extra(SocketAttribute.local_address)))
        real_port = listener.listeners[0].extra(SocketAttribute.local_port)
        path = self.config.admin_socket or admin.default_path(real_port)
        admin_socket = admin.AdminSocket(Path(path))
        try:
            await admin_socket.open()
        except BaseException:
            await listener.aclose()
            raise
        self._listener, self.admin_socket = listener, admin_socket

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until :meth:`stop`, then shut down gracefully.

        ``task_status.started`` receives the addresses really listened on (port 0 picks a
        free one), so ``await tg.start(server.serve)`` returns once clients can connect.
        """
        try:
            if self._listener is None:
                await self.listen()
            assert self._listener is not None and self.admin_socket is not None
            await self._serve(self._listener, self.admin_socket, task_status)
        finally:
            self.stopped.set()

    async def _serve(
        self,
        listener: MultiListener[anyio.abc.SocketStream],
        admin_socket: admin.AdminSocket,
        task_status: anyio.abc.TaskStatus[list[str]],
    ) -> None:
        self.started_at = time.monotonic()
        async with listener, anyio.create_task_group() as clients:
            async with anyio.create_task_group() as background:
                background.start_soon(self._flush_loop)
                background.start_soon(self._sweep_loop)
                background.start_soon(admin_socket.serve, self)
                for sub in listener.listeners:
                    raw = sub.extra(SocketAttribute.raw_socket)
                    background.start_soon(self._accept_loop, raw, clients)
                log.info("imkit listening on %s", ", ".join(self.addresses))
                log.info("admin socket: %s", admin_socket.path)
                task_status.started(self.addresses)
                await self._stop.wait()
                # No more accepts; the admin socket closes and its file is removed.
                background.cancel_scope.cancel()
            log.info("shutting down: saying goodbye to %d users", len(self.hub))
            # Closing every outbox wakes every writer to send its bye; the flusher is
            # not needed for that.
            self.hub.shutdown()
            clients.cancel_scope.deadline = anyio.current_time() + SHUTDOWN_GRACE

    async def _accept_loop(self, listening: socket.socket, clients: anyio.abc.TaskGroup) -> None:
        while True:
            await anyio.wait_readable(listening)
            while True:
                try:
                    sock, peer = listening.accept()
                except BlockingIOError:
                    break
                except OSError as error:  # out of file descriptors, most likely
                    log.warning("accept failed: %s", error)
                    await anyio.sleep(0.1)
                    break
                sock.setblocking(False)
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                clients.start_soon(self._run_connection, sock, peer)

    async def _run_connection(self, sock: socket.socket, peer: object) -> None:
        addr = format_addr(peer)
        self.hub.stats.connections_total += 1
        now = time.monotonic()
        wire = ServerConnection(max_line=self.config.max_line)
        member = self.hub.new_member(addr, wire, Outbox(self.config.max_queue), now)
        connection = Connection(self, SocketLink(sock), member)
        self.connections.add(connection)
        log.info("%s: connected", addr)
        try:
            await connection.run()
        except Exception:  # a bug: log it, and keep serving everyone else
            log.exception("%s: unexpected error", addr)
        finally:
            self.connections.discard(connection)
            who = addr if member.name == addr else f"{member.name} ({addr})"
            log.info("%s: disconnected", who)

    async def _sweep_loop(self) -> None:
        timeout = self.config.idle_timeout
        if timeout <= 0:
            return
        interval = min(MAX_SWEEP_INTERVAL, timeout / 4)
        while True:
            await anyio.sleep(interval)
            for member in self.hub.expire_idle(time.monotonic() - timeout):
                log.info("%s (%s): idle for %gs, forced offline", member.name, member.addr, timeout)


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (``imkit serve``).

    A second signal during the shutdown stops waiting for clients and exits at once.
    """
    server = Server(config)
    await server.listen()  # outside the task group: a ServeError stays plain
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                if server.stopping:
                    tg.cancel_scope.cancel()
                    break
                server.stop()
                tg.start_soon(_cancel_when_done, server, tg.cancel_scope)


async def _cancel_when_done(server: Server, scope: anyio.CancelScope) -> None:
    await server.stopped.wait()
    scope.cancel()  # ends the signal loop too
