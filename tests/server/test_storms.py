"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.operator import answers
from imkit.rules.names import name_problem
from imkit.server import ServerConfig
from tests.conftest import run_server
from tests.support import LineClient, joined, run_imkit, split_addr, start_server_process

# A storm: this many threads, each connecting, sending one line and closing, for at most
# STORM_SECONDS and STORM_CONNECTIONS connections in all.
STORM_THREADS = 6
STORM_SECONDS = 4.0
STORM_CONNECTIONS = 20_000


@contextmanager
def storm(address: str, *, reset: bool) -> Iterator[list[int]]:
    """Run a reconnect storm in threads for the duration of the block (at most
    STORM_SECONDS); yields a one-item list that ends up holding the connections made.

    With ``reset`` each client closes with a RST (SO_LINGER 0), so the kernel may give
    its port to the next connection before the server has seen it leave."""
    host, port = split_addr(address)
    made = [0]
    stop = threading.Event()
    deadline = time.monotonic() + STORM_SECONDS
    lock = threading.Lock()

    def hammer() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if made[0] >= STORM_CONNECTIONS:
                    return
                made[0] += 1
            try:
                sock = socket.create_connection((host, port), timeout=2)
                sock.sendall(b"hi\n")
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(STORM_THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        for thread in threads:
            thread.join(STORM_SECONDS + 5)
        stop.set()


class Stayer:
    """A text client that stays through the storm and counts presence lines."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_connection(split_addr(address), timeout=10)
        self.online = self.offline = 0
        self.buffer = b""
        self.lock = threading.Lock()
        self.echoed = threading.Event()
        self.echo = b""  # the line whose echo echo_time() waits for
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.buffer += data
                *lines, self.buffer = self.buffer.split(b"\n")
                for line in lines:
                    self.online += line.endswith(b":user is online")
                    self.offline += line.endswith(b":user offline")
                    if self.echo and line.endswith(b":" + self.echo):
                        self.echoed.set()

    def echo_time(self, text: str, timeout: float = 30) -> float:
        """Seconds until a public message of ours comes back (inf: not within timeout)."""
        with self.lock:
            self.echo = text.encode()
            self.echoed.clear()
        started = time.monotonic()
        self.sock.sendall(text.encode() + b"\n")
        if not self.echoed.wait(timeout):
            return float("inf")
        return time.monotonic() - started

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.online, self.offline


@pytest.mark.slow
@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_a_reconnect_storm_starves_nobody_and_leaves_no_ghosts(reset: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="imkit-", dir="/tmp"))
    admin_path = folder / "admin.sock"
    server = start_server_process(
        "--idle-timeout", "0", "--rate", "0", "--admin-socket", str(admin_path)
    )
    try:
        stayer = Stayer(server.address)
        with storm(server.address, reset=reset) as made:
            time.sleep(STORM_SECONDS / 2)
            # Mid-storm, those already connected are served, and so is the operator.
            # (Before the fix: no answer for the rest of the storm and tens of seconds
            # after it.)
            assert max(stayer.echo_time(f"still here {i}") for i in range(3)) < 5
            stats = run_imkit("stats", "--json", "--admin-socket", str(admin_path), timeout=20)
            assert stats.returncode == 0, stats.stderr
        assert made[0] > 1000  # it was a storm
        # Every storm client that came online went offline again, exactly once each.
        _settle(stayer)
        online, offline = stayer.counts()
        assert online == offline + 1  # +1: the stayer's own join line
        who = run_imkit("who", "--json", "--admin-socket", str(admin_path))
        assert who.returncode == 0, who.stderr
        assert len(json.loads(who.stdout)) == 1  # the stayer alone
        # Signals are handled at once, whatever the load was.
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert time.monotonic() - started < 6
        log = server.stderr()
        assert "received SIGTERM" in log
        assert "Traceback" not in log
        assert "KeyError" not in log and "InvalidStateError" not in log
    finally:
        server.stop()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def _settle(stayer: Stayer) -> None:
    # The storm clients leave within moments of the storm's end; wait until the counts
    # stop moving with every storm client gone (or 30 s), then let the test compare them.
    deadline = time.monotonic() + 30
    last = (-1, -1)
    while time.monotonic() < deadline:
        now = stayer.counts()
        if now == last and now[0] == now[1] + 1:
            return
        last = now
        time.sleep(0.5)


def test_the_kernel_reusing_an_address_makes_a_second_default_name() -> None:
    """Unit-level twin of the RST storm: two members with one address at once."""
    from imkit.protocol import Mode, ServerConnection

    hub = Hub(wall_clock=lambda: 0.0)

    def member(addr: str) -> Member:
        wire = ServerConnection()
        wire.mode = Mode.TEXT
        m = hub.new_member(addr, wire, Outbox(), 0.0)
        hub.join(m)
        return m

    watcher = member("10.0.0.9:1")
    old = member("10.0.0.1:5000")
    new = member("10.0.0.1:5000")  # the old one's leave has not been seen yet
    newest = member("10.0.0.1:5000")
    assert [old.name, new.name, newest.name] == [
        "10.0.0.1:5000",
        "10.0.0.1:5000#2",
        "10.0.0.1:5000#3",
    ]
    hub.leave(old)
    assert hub.find("10.0.0.1:5000#2") is new  # the old one's leave removed nobody else
    hub.leave(new)
    hub.leave(newest)
    assert hub.members == [watcher]
    lines = watcher.outbox.take().decode().splitlines()
    assert lines[-3:] == [
        "[10.0.0.1:5000]10.0.0.1:5000:user offline",
        "[10.0.0.1:5000]10.0.0.1:5000#2:user offline",
        "[10.0.0.1:5000]10.0.0.1:5000#3:user offline",
    ]
    # Nobody can take such a name: like an address, it contains ':'.
    assert name_problem("10.0.0.1:5000#2") is not None


# ------------------------------------------------------------------------- bursts


async def _read_count(client: LineClient, marker: bytes, count: int) -> int:
    """Read until ``count`` lines containing ``marker`` or EOF; how many came."""
    seen = 0
    buffer = b""
    while seen < count:
        try:
            data = await client.stream.receive(1 << 16)
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        seen += sum(marker in line for line in lines)
    return seen


class LineCounter:
    """A client in a thread that reads continuously and counts the lines containing
    ``marker`` until it has ``expected`` of them or the server closes it."""

    def __init__(self, address: str, name: str, marker: bytes, expected: int) -> None:
        self.sock = socket.create_connection(split_addr(address), timeout=10)
        self.sock.sendall(f"rename|{name}\n".encode())
        self.marker, self.expected = marker, expected
        self.seen = 0
        self.dropped = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        self.sock.settimeout(60)
        while self.seen < self.expected:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            *lines, buffer = (buffer + data).split(b"\n")
            self.seen += sum(line.endswith(self.marker) for line in lines)
            self.dropped |= any(b"slow consumer" in line for line in lines)

    def result(self, timeout: float) -> int:
        self.thread.join(timeout)
        self.sock.close()
        return self.seen


def test_one_huge_write_reaches_readers_that_keep_up() -> None:
    # The case: with --rate 0, one client writes 100,000 lines at once. The
    # server is paused meanwhile, so that the kernel holds the whole flood for it and its
    # reads come back full (as on a busy server): before the fix every queue filled
    # before a byte was written, and both readers were dropped as slow consumers.
    lines = 100_000
    server = start_server_process("--idle-timeout", "0", "--rate", "0")
    try:
        readers = [LineCounter(server.address, f"r{i}", b"flood:m", lines) for i in range(2)]
        flooder = LineCounter(server.address, "flood", b"flood:m", lines)  # reads its echoes
        time.sleep(0.5)  # the renames are through before the flood
        flood = b"m\n" * lines
        server.proc.send_signal(signal.SIGSTOP)
        try:
            flooder.sock.setblocking(False)
            queued = 0
            with contextlib.suppress(BlockingIOError):
                while queued < len(flood):
                    queued += flooder.sock.send(flood[queued:])
        finally:
            server.proc.send_signal(signal.SIGCONT)
        flooder.sock.setblocking(True)
        flooder.sock.sendall(flood[queued:])
        counts = [reader.result(90) for reader in readers]
        assert counts == [lines, lines]
        assert flooder.result(30) == lines
        assert not any(r.dropped for r in readers)
        assert "slow consumer" not in server.stderr()
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_burst_of_joins_is_announced_to_everyone_in_one_order() -> None:
    # The joins a round takes in are announced together (Hub.announce_joins): everyone
    # must still see every online line once, in the server's order of arrival, and each
    # newcomer its own line first and then the lines of those who came after it.
    count = 300
    async with run_server(ServerConfig(port=0, idle_timeout=0, max_per_ip=0)) as server:
        address = server.addresses[0]
        watcher = await LineClient.connect(address)
        await watcher.request(type="hello")
        clients: list[LineClient] = []

        async def connect() -> None:
            clients.append(await LineClient.connect(address))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(connect)
            order = [(await watcher.json_of_type("presence"))["name"] for _ in range(count)]
            assert sorted(order) == sorted(client.addr for client in clients)
            for client in clients:
                expected = order[order.index(client.addr) :]
                got = [await client.line() for _ in expected]
                assert got == [f"[{name}]{name}:user is online\n" for name in expected]
            users = await watcher.request(type="who")
            assert [u["name"] for u in users["users"]][1:] == order
        for client in clients:
            await client.aclose()


@pytest.mark.anyio
async def test_bursts_within_the_default_limits_reach_a_reader_that_keeps_up() -> None:
    senders, per_sender, size = 8, 50, 4000  # 50 lines: within the default --burst
    async with run_server(ServerConfig(port=0, idle_timeout=0)) as server:
        reader = await joined(server.addresses[0], "reader")
        clients = [await joined(server.addresses[0], f"s{i}") for i in range(senders)]
        counts: dict[str, int] = {}
        total = senders * per_sender

        async def count(name: str, client: LineClient) -> None:
            counts[name] = await _read_count(client, b"]s", total)

        body = b"x" * size
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(count, "reader", reader)
                for i, client in enumerate(clients):
                    tg.start_soon(count, f"s{i}", client)
                for client in clients:
                    burst = b"".join(b"%d %s\n" % (k, body) for k in range(per_sender))
                    tg.start_soon(client.send, burst)
        assert counts["reader"] == total
        assert all(counts[f"s{i}"] == total for i in range(senders))
        assert server.hub.stats.slow_consumers == 0


@pytest.mark.anyio
async def test_a_stalled_reader_holds_the_others_up_once_at_most() -> None:
    """Backpressure must not let a reader that stopped reading stall the chat: it is
    waited for once (CONGESTION_TIMEOUT), then dropped as a slow consumer as before."""
    limit = 64 * 1024
    config = ServerConfig(port=0, idle_timeout=0, rate=0, max_queue=limit, max_line=16384)
    async with run_server(config) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(split_addr(server.addresses[0]))  # never reads
        talker = await joined(server.addresses[0], "talker")
        listener = await joined(server.addresses[0], "listener")
        await talker.line()
        body = "z" * 10000
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(talker.drain)
            with anyio.fail_after(60):
                for i in range(600):  # 6 MB: far past the stalled socket's buffers
                    await talker.send(f"{i} {body}\n")
                    line = await listener.line_matching(rf"talker:{i} ")
                    assert line == f"[{talker.addr}]talker:{i} {body}\n"
            tg.cancel_scope.cancel()
        assert server.hub.stats.slow_consumers == 1
        counters = answers.stats(server)  # what `imkit stats` shows
        assert counters["backpressure_given_up"] == 1  # waited for once, then not again
        assert counters["backpressure_pauses"] >= 1
        assert time.monotonic() - started < 30
        stalled.close()
