"""``imkit bench``: load-test a running server, as redis-benchmark does for Redis.

It speaks the text protocol, so it measures any IM-System-compatible server; or JSON
Lines over the same TCP port (``json``); or JSON over WebSocket to ``imkit serve
--web`` (``ws``, each message one text frame). The transport is a thin switch: a
:class:`Dialect` (what a line says: text or JSON) over a carrier (how it travels: lines
on TCP, or frames on a WebSocket); the scenarios, the counting and the timing are one
code for all three. Two scenarios, both closed loop (a sender sends its next line only
when the last one has arrived, so the server is measured, not a queue in front of it):

* **broadcast**: N clients, S of them senders. Each line reaches all N clients;
  deliveries/s counts those arrivals, latency is from send to each arrival.
* **private**: N/2 pairs; each sender writes ``to|PEER|...`` and waits until its
  peer has it.

The numbers include this client's own cost: Python reading N sockets is slower than
the Go load generator in ``../shared/perf`` that judges imkit's speed (bench/).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from imkit.errors import TimedOut, Unreachable

Transport = Literal["text", "json", "ws"]
TRANSPORT_NAMES = {"text": "text protocol", "json": "JSON Lines", "ws": "WebSocket"}

# One line in flight per sender; a line that has not come back by then is counted as
# lost and the sender goes on.
ECHO_TIMEOUT = 5.0
# After the last line, how long arrivals still being written are waited for.
DRAIN_TIME = 2.0
# Connections opened at once while setting up.
CONNECT_CONCURRENCY = 50
# Before sending, the clients read the joins' events (every join is told to everyone,
# N² lines for N clients) until none arrived for this long, at most SETTLE_LIMIT: else
# the first bench lines would queue behind them and measure the setup.
SETTLE_QUIET = 0.3
SETTLE_LIMIT = 120.0
MARKER = b" bench "


@dataclass
class Results:
    scenario: str
    clients: int
    senders: int
    transport: Transport = "text"
    duration: float = 0.0
    sent: int = 0
    deliveries: int = 0
    expected: int = 0
    lost: int = 0  # lines whose echo (or private arrival) never came
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))

    def percentile(self, fraction: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        values = sorted(self.latencies_ns)
        if not values:
            return math.nan
        rank = min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))
        return values[rank] / 1e6

    def summary(self) -> dict[str, Any]:
        rate = self.deliveries / self.duration if self.duration else 0.0
        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "senders": self.senders,
            "transport": self.transport,
            "duration_s": round(self.duration, 3),
            "sent": self.sent,
            "deliveries": self.deliveries,
            "expected_deliveries": self.expected,
            "lost": self.lost,
            "deliveries_per_s": round(rate, 1),
            "latency_ms": {
                name: round(self.percentile(fraction), 3)
                for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            },
        }


class Carrier(Protocol):
    """How lines travel: :meth:`send` one line (no newline), :meth:`receive` whole ones."""

    async def send(self, line: bytes) -> None: ...

    async def receive(self) -> list[bytes]:
        """The next whole lines (at least one); [] when the connection is over."""
        ...

    async def aclose(self) -> None: ...


class TcpCarrier:
    """Newline-terminated lines on a TCP stream (text mode and JSON Lines)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self._buffer = b""

    async def send(self, line: bytes) -> None:
        await self.stream.send(line + b"\n")

    async def receive(self) -> list[bytes]:
        while True:
            try:
                self._buffer += await self.stream.receive()
            except anyio.EndOfStream:
                return []
            *lines, self._buffer = self._buffer.split(b"\n")
            if lines:
                return lines

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


class WebSocketCarrier:
    """One line per text message on a WebSocket (wsproto over the TCP stream)."""

    def __init__(self, stream: anyio.abc.ByteStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self._parts: list[str] = []
        self._ended = False

    @classmethod
    async def connect(cls, stream: anyio.abc.ByteStream, host: str, path: str) -> WebSocketCarrier:
        ws = WSConnection(ConnectionType.CLIENT)
        # No Origin header: a program, not a browser (the server accepts it).
        await stream.send(ws.send(Request(host=host, target=path)))
        while True:
            try:
                ws.receive_data(await stream.receive())
                for event in ws.events():  # the server says nothing before the hello
                    if isinstance(event, AcceptConnection):
                        return cls(stream, ws)
                    if isinstance(event, RejectConnection):
                        raise Unreachable(
                            f"the server refused the WebSocket at {path} (HTTP {event.status_code})"
                        )
            except (anyio.EndOfStream, RemoteProtocolError):
                raise Unreachable(f"no WebSocket server at ws://{host}{path}") from None

    async def send(self, line: bytes) -> None:
        await self.stream.send(self.ws.send(TextMessage(line.decode())))

    async def receive(self) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        lines.append("".join(self._parts).encode())
                        self._parts = []
                elif isinstance(event, Ping):
                    await self.stream.send(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self._ended = True
            if lines or self._ended:
                return lines
            try:
                data = await self.stream.receive()
            except anyio.EndOfStream:
                return lines
            self.ws.receive_data(data)

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


class Dialect:
    """What the lines say: the text protocol (this class) or JSON (:class:`JsonDialect`)."""

    def public(self, text: str) -> bytes:
        return text.encode()

    def private(self, to: str, text: str) -> bytes:
        return f"to|{to}|{text}".encode()

    async def join(self, carrier: Carrier, name: str, password: str | None) -> None:
        if password:
            await carrier.send(f"pass|{password}".encode())
        await carrier.send(f"rename|{name}".encode())
        expected = f"you have updated user name: {name}".encode()
        while lines := await carrier.receive():
            for line in lines:
                if expected in line:
                    return
                if b"wrong password" in line or b"password is required" in line:
                    raise Unreachable("the server refused the password")
                if b"has existed" in line:
                    raise Unreachable(f"the name {name} is taken on the server")
        raise Unreachable("the server closed the connection while the bench joined")


class JsonDialect(Dialect):
    def public(self, text: str) -> bytes:
        return json.dumps({"type": "message", "text": text}).encode()

    def private(self, to: str, text: str) -> bytes:
        return json.dumps({"type": "message", "text": text, "to": to}).encode()

    async def join(self, carrier: Carrier, name: str, password: str | None) -> None:
        hello: dict[str, Any] = {"type": "hello", "v": 1, "name": name}
        if password:
            hello["password"] = password
        await carrier.send(json.dumps(hello).encode())
        while lines := await carrier.receive():
            for line in lines:
                if line.startswith(b'{"type":"welcome"'):
                    return
                if line.startswith((b'{"type":"error"', b'{"type":"bye"')):
                    reply = json.loads(line)
                    raise Unreachable(f"the server refused the hello: {reply.get('message')}")
        raise Unreachable("the server closed the connection while the bench joined")


class Activity:
    """How many batches of lines all the clients have received (see SETTLE_QUIET)."""

    batches = 0


class BenchClient:
    """One connection that counts the bench lines it receives."""

    def __init__(self, carrier: Carrier, dialect: Dialect, index: int, name: str) -> None:
        self.activity = Activity()
        self.carrier = carrier
        self.dialect = dialect
        self.index = index
        self.name = name
        self.echo = anyio.Event()  # set when this sender's own line has arrived
        self.waiting_for = -1  # the sequence number the sender waits for
        self.on_line: Callable[[BenchClient, int, int, int], None] = _ignore

    async def read(self) -> None:
        try:
            activity = self.activity
            while lines := await self.carrier.receive():
                activity.batches += 1
                for line in lines:
                    at = line.find(MARKER)
                    if at >= 0:
                        self._bench_line(line[at + len(MARKER) :])
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    def _bench_line(self, rest: bytes) -> None:
        # Text mode: the rest of the line; JSON: the rest of the "text" string.
        try:
            sender, seq, sent_ns = (int(x) for x in rest.split(b'"', 1)[0].split())
        except ValueError:
            return  # not ours
        self.on_line(self, sender, seq, time.time_ns() - sent_ns)


def _ignore(client: BenchClient, sender: int, seq: int, latency: int) -> None:
    pass


@dataclass(frozen=True)
class Target:
    """Where the bench connects, and how."""

    host: str
    port: int
    transport: Transport = "text"
    path: str = "/ws"  # the WebSocket's path (transport "ws")

    def __str__(self) -> str:
        if self.transport == "ws":
            return f"ws://{_host_port(self.host, self.port)}{self.path}"
        return _host_port(self.host, self.port)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_web_url(url: str) -> Target:
    """``ws://HOST:PORT/PATH`` (or ``HOST:PORT``, then ``/ws``) as a WebSocket target."""
    if "//" not in url:
        url = f"ws://{url}"
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError(f"{url}: only ws:// URLs are supported (no wss:// yet)")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{url}: give ws://HOST:PORT/PATH, for example ws://127.0.0.1:8080/ws")
    path = parts.path or "/ws"
    if parts.query:
        path += f"?{parts.query}"
    return Target(parts.hostname, port, "ws", path)


async def _open(target: Target, index: int, password: str | None) -> BenchClient:
    name = f"bench{os.getpid()}-{index}"
    try:
        stream = await anyio.connect_tcp(target.host, target.port)
    except OSError as error:
        raise Unreachable(f"cannot connect to {target}: {error}") from None
    try:
        carrier: Carrier
        if target.transport == "ws":
            host = _host_port(target.host, target.port)
            carrier = await WebSocketCarrier.connect(stream, host, target.path)
        else:
            carrier = TcpCarrier(stream)
        dialect = Dialect() if target.transport == "text" else JsonDialect()
        await dialect.join(carrier, name, password)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return BenchClient(carrier, dialect, index, name)


async def _connect_all(target: Target, count: int, password: str | None) -> list[BenchClient]:
    clients: list[BenchClient | None] = [None] * count
    limit = anyio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> None:
        async with limit:
            clients[i] = await _open(target, i, password)

    try:
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
    except BaseExceptionGroup as group:  # the first failure says why
        for client in clients:
            if client is not None:
                await client.carrier.aclose()
        first = group.exceptions[0]
        raise (first if isinstance(first, Exception) else group) from None
    return [c for c in clients if c is not None]


async def run_bench(
    target: Target,
    *,
    scenario: str,
    clients: int,
    senders: int,
    duration: float,
    password: str | None = None,
    progress: Callable[[float, Results], None] | None = None,
    connect_timeout: float = 60.0,
) -> Results:
    """Connect ``clients``, run ``scenario`` for ``duration`` seconds, return the counts."""
    if scenario == "private":
        senders = clients // 2
    results = Results(scenario, clients, senders, target.transport)
    try:
        with anyio.fail_after(connect_timeout):
            group = await _connect_all(target, clients, password)
    except TimeoutError:
        raise TimedOut(f"could not connect {clients} clients in {connect_timeout:g}s") from None
    all_arrived = anyio.Event()
    if scenario == "private":
        pairs = {i: i + senders for i in range(senders)}  # sender -> receiver
    else:
        pairs = {}

    def on_line(client: BenchClient, sender: int, seq: int, latency: int) -> None:
        results.deliveries += 1
        results.latencies_ns.append(latency)
        if results.deliveries == results.expected:
            all_arrived.set()
        owner = group[sender] if 0 <= sender < len(group) else None
        if owner is None or owner.waiting_for != seq:
            return
        if scenario == "broadcast" and client is owner:
            owner.echo.set()
        elif scenario == "private" and pairs.get(sender) == client.index:
            owner.echo.set()

    activity = Activity()
    for client in group:
        client.on_line = on_line
        client.activity = activity

    async def send_loop(sender: BenchClient, stop_at: float) -> None:
        seq = 0
        peer = group[pairs[sender.index]].name if pairs else None
        dialect, carrier = sender.dialect, sender.carrier
        while time.monotonic() < stop_at:
            sender.echo = anyio.Event()
            sender.waiting_for = seq
            text = f"b{MARKER.decode()}{sender.index} {seq} {time.time_ns()}"
            line = dialect.private(peer, text) if peer else dialect.public(text)
            await carrier.send(line)
            results.sent += 1
            with anyio.move_on_after(ECHO_TIMEOUT) as scope:
                await sender.echo.wait()
            if scope.cancelled_caught:
                results.lost += 1
            seq += 1

    async def report() -> None:
        while True:
            await anyio.sleep(1.0)
            if progress is not None:
                progress(time.monotonic() - start, results)

    try:
        async with anyio.create_task_group() as readers:
            for client in group:
                readers.start_soon(client.read)
            await _settle(activity)
            start = time.monotonic()
            async with anyio.create_task_group() as running:
                running.start_soon(report)
                async with anyio.create_task_group() as sending:
                    for sender in group[:senders]:
                        sending.start_soon(send_loop, sender, start + duration)
                results.duration = time.monotonic() - start
                running.cancel_scope.cancel()
            per_line = clients if scenario == "broadcast" else 1
            results.expected = results.sent * per_line
            if results.deliveries < results.expected:
                with anyio.move_on_after(DRAIN_TIME):
                    await all_arrived.wait()
            readers.cancel_scope.cancel()
    finally:
        for client in group:
            await client.carrier.aclose()
    return results


async def _settle(activity: Activity) -> None:
    """Wait until the clients have read what the joins sent them (SETTLE_QUIET)."""
    with anyio.move_on_after(SETTLE_LIMIT):
        while True:
            seen = activity.batches
            await anyio.sleep(SETTLE_QUIET)
            if activity.batches == seen:
                return


def format_report(results: Results) -> str:
    summary = results.summary()
    lat = summary["latency_ms"]
    senders = f"{results.senders} sender{'s' if results.senders != 1 else ''}"
    who = (
        f"{results.clients} clients, {senders}"
        if results.scenario == "broadcast"
        else f"{results.senders} pairs"
    )
    lines = [
        f"scenario     {results.scenario}: {who}, {results.duration:.1f} s, "
        f"{TRANSPORT_NAMES[results.transport]}",
        f"sent         {results.sent:,} lines",
        f"deliveries   {results.deliveries:,} of {results.expected:,} "
        f"({summary['deliveries_per_s']:,.0f}/s)",
        f"latency      p50 {lat['p50']} ms   p90 {lat['p90']} ms   "
        f"p99 {lat['p99']} ms   max {lat['max']} ms",
    ]
    if results.lost:
        lines.append(f"lost         {results.lost:,} lines never arrived within {ECHO_TIMEOUT:g} s")
    return "\n".join(lines)


def print_progress(elapsed: float, results: Results) -> None:
    rate = results.deliveries / elapsed if elapsed else 0.0
    line = f"{elapsed:5.1f} s  {results.deliveries:>12,} deliveries  {rate:>12,.0f}/s"
    if sys.stderr.isatty():
        print(f"\r{line}", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)
