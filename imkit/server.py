"""The anyio transport: listeners, one reader and one writer per connection, the idle
sweep, and shutdown.

This is the only module that touches chat sockets, and transport errors are translated
here, at one boundary: a connection that breaks ends that connection, never the server.

How bytes leave (the hot path): the hub queues bytes into a connection's
:class:`~imkit.hub.Outbox`, which tells the server it is ready. A single flusher task runs
once per scheduling round, after every reader that woke in that round has been handled,
and writes each ready outbox with one non-blocking ``send`` of everything queued. Lines
that arrive together therefore leave together, and a broadcast to N users costs N
syscalls and no task switches (large flushes are shared with a second thread, see
:class:`WriteThread`). Only what the kernel refuses (a full socket buffer) is left to
the connection's own writer task, which waits until the socket is writable; the flusher
never writes to a connection whose writer is busy, so order is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import itertools
import logging
import os
import queue
import resource
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from imkit import admin
from imkit.errors import ServeError
from imkit.hub import DEFAULT_MAX_QUEUE, Hub, Member, Outbox
from imkit.protocol import (
    DEFAULT_MAX_LINE,
    UNAUTHORIZED,
    Authenticate,
    Bye,
    Command,
    Error,
    Hello,
    Mode,
    RequestId,
    ServerConnection,
    encode_text,
)

log = logging.getLogger("imkit.server")

DEFAULT_PORT = 8888
DEFAULT_IDLE_TIMEOUT = 60.0  # seconds, as in the seed

# One recv() takes at most this much; big enough for a burst of pipelined lines.
RECV_SIZE = 65536
# How long a closing connection may take to write its last lines (bye, a kick reason)
# to a client that is still reading; past it the socket is closed regardless.
DRAIN_TIMEOUT = 5.0
# A flush of at least this many connections is shared with the WriteThread; below it,
# waking the thread (tens of microseconds) costs about what the sends it would take over
# save (measured: at 32, 50 private pairs ran ~4 % slower with the thread than without).
PARALLEL_FLUSH_MIN = 64
# ... and it is shared this many connections at a time (see WriteThread.flush).
SHARED_FLUSH_BATCH = 1024
# After our last byte, read and discard what the client still sends for this long, so
# that closing does not reset the connection before the client has read the bye.
LINGER_TIMEOUT = 2.0
# On SIGTERM every client gets this long to receive its bye before the server exits.
SHUTDOWN_GRACE = 3.0
# The idle sweep runs at least this often, so a kick comes at most this late.
MAX_SWEEP_INTERVAL = 1.0
# Each connection is a socket, two tasks and some buffers (about 13 KiB measured);
# 10,000 of them fit comfortably in memory and in a raised descriptor limit.
DEFAULT_MAX_CLIENTS = 10_000
# Lines per second a client may send, and how many it may send at once. A person types
# far slower; a script's burst of 50 goes through at once; a flood is paced at 20/s.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 50
# With --password, a client that has not proved it knows it by then is closed.
AUTH_TIMEOUT = 5.0
# A TLS client that has not finished its handshake by then is closed.
TLS_HANDSHAKE_TIMEOUT = 10.0


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


class LoopReadable:
    """Waits until a socket is readable, on the asyncio event loop.

    ``anyio.wait_readable`` registers the socket with the loop for every wait and
    removes it afterwards: two ``epoll_ctl`` calls per message, which measured as 45 %
    of the server's time under load (docs/performance.md). This registration instead
    stays while the reader keeps coming back; it is dropped only when the socket
    becomes readable with nobody waiting (a paced or busy reader), so that a readable
    socket nobody reads cannot spin the loop, and taken up again at the next wait.
    """

    __slots__ = ("_loop", "_fd", "_waiter", "_registered")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._fd = sock.fileno()
        self._waiter: asyncio.Future[None] | None = None
        self._registered = False

    async def wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        if not self._registered:
            self._loop.add_reader(self._fd, self._on_readable)
            self._registered = True
        try:
            await waiter
        finally:
            self._waiter = None

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            self.close()
        elif not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        if self._registered:
            self._registered = False
            self._loop.remove_reader(self._fd)


class SocketLink:
    """A plain socket driven by readiness waits: the loop's own on asyncio (see
    :class:`LoopReadable`), anyio's on any other backend."""

    __slots__ = ("sock", "_maybe_more", "_readable")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._maybe_more = True  # False after a short read: wait before the next recv
        try:
            self._readable: LoopReadable | None = LoopReadable(asyncio.get_running_loop(), sock)
        except RuntimeError:  # not asyncio
            self._readable = None

    async def _wait_readable(self) -> None:
        if self._readable is not None:
            await self._readable.wait()
        else:
            await anyio.wait_readable(self.sock)

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
            await self._wait_readable()
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                await self._wait_readable()
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
            if self._readable is not None:
                self._readable.close()
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
    max_clients: int = DEFAULT_MAX_CLIENTS
    rate: float = DEFAULT_RATE  # lines per second per client; 0: unlimited
    burst: int = DEFAULT_BURST
    rate_exempt: tuple[str, ...] = ()  # addresses or networks the rate limit skips
    password: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    auth_timeout: float = AUTH_TIMEOUT
    write_thread: bool | None = None  # None: when there is more than one core


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


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address (``127.0.0.1``) or a network (``10.0.0.0/8``); ValueError otherwise."""
    return ipaddress.ip_network(text.strip(), strict=False)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server's TLS context, or None without a certificate; ServeError when unusable."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ServeError("TLS needs both --tls-cert and --tls-key")
    for path in (cert, key):
        if not os.path.isfile(path):
            raise ServeError(f"cannot read TLS file {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ServeError(f"cannot load the TLS certificate {cert} and key {key}: {error}") from None
    return context


def _tls_reason(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, anyio.BrokenResourceError) else error
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return "timed out" if isinstance(error, TimeoutError) else str(cause or error) or "closed"


def raise_open_file_limit(max_clients: int) -> None:
    """Let the process hold --max-clients sockets: raise the soft descriptor limit up to
    the hard one (many systems start at 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_clients + 64  # listeners, the admin socket, logs, a margin
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "only %d file descriptors are allowed: fewer than --max-clients %d", soft, max_clients
        )


class _WriteJob:
    """One flush's sends, shared by the flusher and the write thread: each takes the next
    write nobody has taken yet, so the work splits itself by how fast each side runs."""

    __slots__ = ("writes", "results", "_next", "_claim", "_done")

    def __init__(self, writes: list[tuple[socket.socket, bytes]]) -> None:
        self.writes = writes
        self.results: list[int | OSError | None] = [None] * len(writes)
        self._next = itertools.count()  # next() on it is atomic under the GIL
        # Taken by the thread as it starts or by the flusher once all is sent, whichever
        # comes first: it decides whether the thread takes part (and must be waited for).
        self._claim = threading.Lock()
        self._done = threading.Event()

    def _work(self) -> None:
        writes, results, count = self.writes, self.results, len(self.writes)
        for index in self._next:
            if index >= count:
                return
            sock, data = writes[index]
            try:
                results[index] = sock.send(data)
            except BlockingIOError:
                results[index] = 0
            except OSError as error:
                results[index] = error

    def help(self) -> None:
        """The write thread's part; nothing if the flusher has finished alone."""
        if self._claim.acquire(blocking=False):
            try:
                self._work()
            finally:
                self._done.set()  # whatever happens, the flusher must not wait forever

    def run(self) -> None:
        """The flusher's part: send until nothing is left, then wait for the thread's
        last send, unless the thread never started (then it never will)."""
        self._work()
        if not self._claim.acquire(blocking=False):
            self._done.wait()


class WriteThread:
    """A second thread for the flusher's ``send()`` calls.

    ``send()`` releases the GIL, so on a machine with more than one core two threads can
    be inside it at once. For a large batch the flusher takes every connection's bytes,
    offers the sends to this thread and works through them itself at the same time, then
    waits for the thread's last one. While it waits the event loop runs nothing else, so
    no other code touches those sockets meanwhile, and every connection's bytes still
    leave in order. What it gains on broadcasts is measured in docs/performance.md.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="imkit-writes", daemon=True).start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.help()
            except Exception:  # a bug: log it, and let the flusher do the sends alone
                log.exception("the write thread failed")

    def close(self) -> None:
        self._jobs.put(None)

    def flush(self, ready: list[Connection]) -> None:
        # In batches, so that only one batch's bytes are out of the outboxes at a time:
        # all at once, 5,000 users joining 50 at a time left the server holding 20.5
        # instead of 16.6 KiB per connection (freed, but not given back to the system).
        for start in range(0, len(ready), SHARED_FLUSH_BATCH):
            self._flush_batch(ready[start : start + SHARED_FLUSH_BATCH])

    def _flush_batch(self, ready: list[Connection]) -> None:
        handed: list[tuple[Connection, bytes]] = []
        writes: list[tuple[socket.socket, bytes]] = []
        for connection in ready:
            link = connection.link
            if not isinstance(link, SocketLink):  # TLS: only its writer task writes
                connection.flush_nowait()
            elif data := connection.take_for_flush():
                handed.append((connection, data))
                writes.append((link.sock, data))
        job = _WriteJob(writes)
        self._jobs.put(job)
        job.run()
        for (connection, data), sent in zip(handed, job.results, strict=True):
            # None only if the thread itself failed mid-send: treat it as a broken
            # socket (that connection ends) rather than lose track of the bytes.
            connection.flushed(data, OSError("the write thread failed") if sent is None else sent)


def use_write_thread() -> bool:
    """A second writing thread only pays off with a second core to run it on."""
    return len(os.sched_getaffinity(0)) > 1


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
        "bucket",
    )

    def __init__(
        self, server: Server, link: Link, member: Member, bucket: TokenBucket | None = None
    ) -> None:
        self.server = server
        self.bucket = bucket
        self.link = link
        self.member = member
        self.outbox = member.outbox
        self.writer_busy = False  # the writer task owns the socket until it is done
        self.closed = False
        self._writer_wake = anyio.Event()
        self._read_scope = anyio.CancelScope()
        # A partial, not a method that calls another: this runs once per recipient.
        self.outbox.on_ready = partial(server.schedule_flush, self)
        self.outbox.on_close = self._on_close

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
        elif sent < len(data):
            self.outbox.unget(data[sent:])
            self._wake_writer()

    async def run(self) -> None:
        server, member = self.server, self.member
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._write_loop)
                    with self._read_scope:
                        if server.config.password is None:
                            server.hub.join(member)
                            await self._read_loop([])
                        elif (first := await self._authenticate()) is not None:
                            await self._read_loop(first)
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

    async def _read_loop(self, commands: list[Command]) -> None:
        """The pump: receive, feed the protocol, hand each command to the hub."""
        link, wire, member, hub = self.link, self.member.wire, self.member, self.server.hub
        bucket = self.bucket
        try:
            while True:
                for command in commands:
                    if bucket is not None and (delay := bucket.take(time.monotonic())):
                        await anyio.sleep(delay)
                        member.last_active = time.monotonic()  # slowed down, not idle
                    hub.handle(member, command)
                data = await link.receive()
                if not data:
                    return
                lines_before = wire.lines_received
                commands = wire.receive_data(data)
                if wire.lines_received != lines_before:
                    member.last_active = time.monotonic()
        except LINK_ERRORS as error:
            log.debug("%s: connection lost: %s", member.addr, error)

    async def _authenticate(self) -> list[Command] | None:
        """Wait for the password; on success join and return the commands that came
        with it (a hello among them, which still gets its welcome). Until then the
        client receives nothing and is not online."""
        password = self.server.config.password
        assert password is not None
        wire = self.member.wire
        timeout = self.server.config.auth_timeout
        with anyio.move_on_after(timeout):
            try:
                commands: list[Command] = []
                while not commands:
                    data = await self.link.receive()
                    if not data:
                        return None
                    commands = wire.receive_data(data)
            except LINK_ERRORS:
                return None
            first = commands[0]
            offered = first.password if isinstance(first, Authenticate | Hello) else None
            if offered is not None and hmac.compare_digest(offered.encode(), password.encode()):
                self.server.hub.join(self.member)
                return commands if isinstance(first, Hello) else commands[1:]
            wrong = "wrong password" if offered is not None else "a password is required"
            self._refuse(first.id if isinstance(first, Hello) else None, wrong)
            return None
        self._refuse(None, f"no password received within {timeout:g} seconds")
        return None

    def _refuse(self, hello_id: RequestId, why: str) -> None:
        # Never log the password offered: only that it was refused.
        self.server.hub.stats.refused_unauthorized += 1
        log.warning("%s: refused: %s", self.member.addr, why)
        wire = self.member.wire
        if wire.mode is Mode.JSON:  # the hello is a request: it gets its reply
            self.outbox.put(wire.encode(Error(hello_id, UNAUTHORIZED, why)))
        self.outbox.close(wire.encode(Bye("unauthorized", why)))

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
        self._ssl_context: ssl.SSLContext | None = None
        self._rate_exempt = [parse_network(a) for a in config.rate_exempt]
        self._write_thread: WriteThread | None = None  # started by serve()

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
            if self._write_thread is not None and len(ready) >= PARALLEL_FLUSH_MIN:
                self._write_thread.flush(ready)
            else:
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
        self._ssl_context = tls_context(self.config.tls_cert, self.config.tls_key)
        raise_open_file_limit(self.config.max_clients)
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
        shown = dataclasses.replace(self.config, password="***" if self.config.password else None)
        log.debug("configuration: %s", shown)
        threaded = self.config.write_thread
        if threaded is None:
            threaded = use_write_thread()
        if threaded:
            self._write_thread = WriteThread()
        try:
            await self._serve_until_stopped(listener, admin_socket, task_status)
        finally:
            if self._write_thread is not None:
                self._write_thread.close()
                self._write_thread = None

    async def _serve_until_stopped(
        self,
        listener: MultiListener[anyio.abc.SocketStream],
        admin_socket: admin.AdminSocket,
        task_status: anyio.abc.TaskStatus[list[str]],
    ) -> None:
        async with listener, anyio.create_task_group() as clients:
            async with anyio.create_task_group() as background:
                background.start_soon(self._flush_loop)
                background.start_soon(self._sweep_loop)
                background.start_soon(admin_socket.serve, self)
                for sub in listener.listeners:
                    raw = sub.extra(SocketAttribute.raw_socket)
                    background.start_soon(self._accept_loop, raw, clients)
                loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
                log.info("imkit listening on %s (%s)", ", ".join(self.addresses), loop)
                log.info("admin socket: %s", admin_socket.path)
                task_status.started(self.addresses)
                await self._stop.wait()
                # No more accepts; the admin socket closes and its file is removed.
                background.cancel_scope.cancel()
            log.info("shutting down: saying goodbye to %d users", len(self.hub))
            # Closing every outbox wakes every writer to send its bye; the flusher is
            # not needed for that. Clients still proving their password get no bye:
            # they are told nothing before they are in.
            self.hub.shutdown()
            for connection in list(self.connections):
                connection.outbox.close(drain=False)
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
                try:
                    sock.setblocking(False)
                    if sock.family in (socket.AF_INET, socket.AF_INET6):
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError as error:  # gone already: never let one client stop accepts
                    log.info("%s: setting up the socket failed: %s", format_addr(peer), error)
                    sock.close()
                    continue
                clients.start_soon(self._run_connection, sock, peer)

    async def _run_connection(self, sock: socket.socket, peer: object) -> None:
        addr = format_addr(peer)
        self.hub.stats.connections_total += 1
        if len(self.connections) >= self.config.max_clients:
            self._refuse_full(sock, addr)
            return
        link = await self._open_link(sock, addr)
        if link is None:
            return
        now = time.monotonic()
        wire = ServerConnection(max_line=self.config.max_line)
        member = self.hub.new_member(addr, wire, Outbox(self.config.max_queue), now)
        connection = Connection(self, link, member, self._bucket_for(peer, now))
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

    def _refuse_full(self, sock: socket.socket, addr: str) -> None:
        self.hub.stats.refused_full += 1
        log.warning("%s: refused: the server is full (%d clients)", addr, self.config.max_clients)
        bye = Bye("server_full", f"the server is full ({self.config.max_clients} clients)")
        with contextlib.suppress(OSError):
            sock.send(encode_text(bye))  # one line, one try: it does not wait for anyone
        sock.close()

    async def _open_link(self, sock: socket.socket, addr: str) -> Link | None:
        """A plain socket, or, with TLS, the stream after a bounded handshake."""
        if self._ssl_context is None:
            return SocketLink(sock)
        try:
            stream = await anyio.abc.SocketStream.from_socket(sock)
        except OSError:
            sock.close()
            return None
        # From here the stream owns the descriptor: closing `sock` as well would close a
        # number the next accepted client may already have been given.
        try:
            with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                tls = await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=self._ssl_context,
                    standard_compatible=False,
                )
        except (TimeoutError, ssl.SSLError, *LINK_ERRORS) as error:
            log.info("%s: TLS handshake failed: %s", addr, _tls_reason(error))
            await anyio.aclose_forcefully(stream)
            return None
        return StreamLink(tls)

    def _bucket_for(self, peer: object, now: float) -> TokenBucket | None:
        if self.config.rate <= 0:
            return None
        if self._rate_exempt and isinstance(peer, tuple):
            try:
                ip = ipaddress.ip_address(peer[0])
            except ValueError:
                ip = None
            if ip is not None and any(ip in network for network in self._rate_exempt):
                return None
        return TokenBucket(self.config.rate, self.config.burst, now)

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
    # Signals are caught before the server says it is listening, so that whoever waits
    # for that line may stop it at once.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
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
