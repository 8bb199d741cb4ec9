"""``imkit bench``: load-test a running server, as redis-benchmark does for Redis.

It speaks the text protocol, so it measures any IM-System-compatible server. Two
scenarios, both closed loop (a sender sends its next line only when the last one has
arrived, so the server is measured, not a queue in front of it):

* **broadcast**: N clients, S of them senders. Each line reaches all N clients;
  deliveries/s counts those arrivals, latency is from send to each arrival.
* **private**: N/2 pairs; each sender writes ``to|PEER|...`` and waits until its
  peer has it.

The numbers include this client's own cost: Python reading N sockets is slower than
the Go load generator in ``../shared/perf`` that judges imkit's speed (bench/).
"""

from __future__ import annotations

import math
import os
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from imkit.errors import TimedOut, Unreachable

# One line in flight per sender; a line that has not come back by then is counted as
# lost and the sender goes on.
ECHO_TIMEOUT = 5.0
# After the last line, how long arrivals still being written are waited for.
DRAIN_TIME = 2.0
# Connections opened at once while setting up.
CONNECT_CONCURRENCY = 50
MARKER = b" bench "


@dataclass
class Results:
    scenario: str
    clients: int
    senders: int
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


class BenchClient:
    """One text-protocol connection that counts the bench lines it receives."""

    def __init__(self, stream: anyio.abc.ByteStream, index: int, name: str) -> None:
        self.stream = stream
        self.index = index
        self.name = name
        self.echo = anyio.Event()  # set when this sender's own line has arrived
        self.waiting_for = -1  # the sequence number the sender waits for
        self.on_line: Callable[[BenchClient, int, int, int], None] = _ignore

    async def read(self) -> None:
        buffer = b""
        try:
            while True:
                buffer += await self.stream.receive()
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    at = line.find(MARKER)
                    if at >= 0:
                        self._bench_line(line[at + len(MARKER) :])
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    def _bench_line(self, rest: bytes) -> None:
        try:
            sender, seq, sent_ns = (int(x) for x in rest.split())
        except ValueError:
            return  # not ours
        self.on_line(self, sender, seq, time.time_ns() - sent_ns)


def _ignore(client: BenchClient, sender: int, seq: int, latency: int) -> None:
    pass


async def _open(host: str, port: int, index: int, password: str | None) -> BenchClient:
    name = f"bench{os.getpid()}-{index}"
    try:
        stream = await anyio.connect_tcp(host, port)
    except OSError as error:
        raise Unreachable(f"cannot connect to {host}:{port}: {error}") from None
    login = f"pass|{password}\n" if password else ""
    await stream.send(f"{login}rename|{name}\n".encode())
    expected = f"you have updated user name: {name}".encode()
    buffer = b""
    while expected not in buffer:
        chunk = await stream.receive()
        buffer = buffer[-200:] + chunk
        if b"wrong password" in buffer or b"password is required" in buffer:
            raise Unreachable("the server refused the password")
        if b"has existed" in buffer:
            raise Unreachable(f"the name {name} is taken on the server")
    return BenchClient(stream, index, name)


async def _connect_all(host: str, port: int, count: int, password: str | None) -> list[BenchClient]:
    clients: list[BenchClient | None] = [None] * count
    limit = anyio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> None:
        async with limit:
            clients[i] = await _open(host, port, i, password)

    try:
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
    except BaseExceptionGroup as group:  # the first failure says why
        first = group.exceptions[0]
        raise (first if isinstance(first, Exception) else group) from None
    return [c for c in clients if c is not None]


async def run_bench(
    host: str,
    port: int,
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
    results = Results(scenario, clients, senders)
    try:
        with anyio.fail_after(connect_timeout):
            group = await _connect_all(host, port, clients, password)
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

    for client in group:
        client.on_line = on_line

    async def send_loop(sender: BenchClient, stop_at: float) -> None:
        seq = 0
        target = f"to|{group[pairs[sender.index]].name}|" if pairs else ""
        while time.monotonic() < stop_at:
            sender.echo = anyio.Event()
            sender.waiting_for = seq
            line = f"{target}b{MARKER.decode()}{sender.index} {seq} {time.time_ns()}\n"
            await sender.stream.send(line.encode())
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
            await anyio.aclose_forcefully(client.stream)
    return results


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
        f"scenario     {results.scenario}: {who}, {results.duration:.1f} s",
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
