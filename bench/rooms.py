#!/usr/bin/env python3
"""Rooms at scale (issue 28): 10,000 clients in 5 rooms of 2,000, beside one lobby of
10,000, with a steady churn of connects and disconnects and the store on.

    bench/rooms.py [--clients 10000] [--rooms 5] [--senders-per-room 1]
                   [--churn-rate 33] [--churn-hold 10] [--warmup 12] [--duration 20]
                   [--rounds 3] [--modes rooms lobby] [--procs 2] [--out DIR] [--json]
    bench/rooms.py --quick            # 1,000 clients, 5 s, one round: a smoke test

Every run starts a fresh `imkit serve --port P --idle-timeout 0 --rate-exempt 127.0.0.1
--max-per-ip 0 --connect-rate 0 --max-clients 19900 --log-level warning --db
TMP/imkit.db` (the default SQLite store, in a temporary folder; 19,900 clients and the
server's few other descriptors fit the usual hard limit of 20,000) and stops it
afterwards, before the load processes close their connections. Modes, run
in turn every round (rooms, lobby, rooms, lobby, ...):

* ``rooms``: client i joins room ``#r{i mod R}`` then leaves the lobby (``join|#rK``,
  ``part|#lobby``), as a team that uses rooms would run its clients: the lobby's
  presence (everyone's coming and going) then does not reach them. The first
  ``--senders-per-room`` members of each room are its senders (``to|#rK|TEXT``).
* ``rooms-stay``: the same, but the clients stay in the lobby too: every connect and
  disconnect is told to all 10,000 (the lobby) besides its room.
* ``lobby``: every client stays in the lobby only; the same number of senders
  (R x senders-per-room) send plain lines there.

The load is closed loop, as the Go load generator's broadcast: each sender sends its
next line (``@b SENDER SEQ MONOTONIC_NS``) only when its own echo has come back (after
5 s without it, it counts a timeout and sends the next). Receivers count deliveries by
the marker ``:@b `` and every ``--sample``-th receiver parses the timestamp for the
latency (the send time from the sender's CLOCK_MONOTONIC to the arrival of the chunk
that holds the line). Churn: once the senders start, a churn task opens
``--churn-rate`` connections a second; each sets up like the others (joins its room
and leaves the lobby, or stays in the lobby), is a receiver like them, and disconnects
after ``--churn-hold`` seconds, so about rate x hold churning clients are online on top
of the ``--clients`` steady ones, and the presence of rooms (joins, parts, offline
lines) is part of the load. The window measured starts ``--warmup`` seconds after the
senders and the churn start (the churn is then at its steady state) and lasts
``--duration`` seconds.

The load runs in ``--procs`` receiver processes (asyncio protocols, uvloop when it can
be imported, as in imkit's own venv) plus one driver process (senders and churn). The
CPU of the server, of the load processes together and of everything else on the machine
is read from /proc over the window; the server's RSS at the end of the window. When
`perf` is installed (and may trace), `perf stat` counts the server's socket system calls
over the window (`--no-syscalls`: not): how many lines each `send` carried.

``--nodes N`` (N > 1) runs the same against a cluster instead: a fresh `redis-server`
without persistence on a free port and N nodes (`--cluster redis://... --cluster-name
rooms-...`, the flags above but `--db`: a cluster keeps its history in Redis); client i
dials node i mod N, so every room and the lobby span the nodes. The server's CPU is
then every node's and Redis', its RSS the nodes'.

It prints a table of medians per mode and writes every run's record to
DIR/rooms-DATE.jsonl (``--json``: the records on stdout too). Standard library only
(uvloop is used if present); run it from the project's virtual environment, so that
`imkit` is the checkout under test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
MARK = b":@b "
STAMPED = re.compile(rb":@b \d+ \d+ (\d+)\n")
MODES = ("rooms", "lobby", "rooms-stay")
ECHO_TIMEOUT = 5.0


# -- the load processes --------------------------------------------------------------


class Stats:
    """One load process's counters. ``measuring`` is set between the two marks."""

    def __init__(self) -> None:
        self.measuring = False
        self.deliveries = 0  # marked lines read by receivers (all the time)
        self.lines_in = 0  # every line read by receivers, presence included (all the time)
        self.bytes_in = 0
        self.malformed = 0
        self.latencies = array("q")  # µs, sampled receivers, in the window only
        self.dropped = 0  # connections the server closed
        self.ready = 0
        self.failed = 0


def setup_lines(mode: str, room: str) -> tuple[bytes, bytes]:
    """What a client sends after connecting, and the line that says it is set up."""
    if mode == "rooms":
        return f"join|{room}\npart|#lobby\n".encode(), b"#lobby * you have left #lobby\n"
    if mode == "rooms-stay":
        return f"join|{room}\n".encode(), f"{room} * you have joined {room}\n".encode()
    return b"topic|#lobby\n", b"#lobby * no topic\n"  # a one-line reply to this client only


class Client(asyncio.Protocol):
    """A receiver: sets up (the mode's lines, until their confirmation), then counts."""

    def __init__(self, stats: Stats, hello: bytes, confirm: bytes, sample: bool) -> None:
        self.stats = stats
        self.hello = hello
        self.confirm = confirm
        self.sample = sample
        self.tail = b""
        self.set_up = False
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] (uvloop's is not a subclass)
        transport.write(self.hello)

    def data_received(self, data: bytes) -> None:
        cut = data.rfind(b"\n") + 1
        if not cut:
            self.tail += data
            return
        chunk = self.tail + data[:cut] if self.tail else data[:cut]
        self.tail = data[cut:]
        stats = self.stats
        if not self.set_up:
            if self.confirm not in chunk:
                return
            self.set_up = True
            if not self.ready.done():
                self.ready.set_result(None)
        stats.deliveries += chunk.count(MARK)
        if stats.measuring:
            stats.lines_in += chunk.count(b"\n")
            stats.bytes_in += len(chunk)
            if self.sample and MARK in chunk:
                now = time.monotonic_ns()
                found = STAMPED.findall(chunk)
                stats.malformed += chunk.count(MARK) - len(found)
                stats.latencies.extend((now - int(ts)) // 1000 for ts in found)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.stats.dropped += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before set up"))

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()  # a reset: no TIME_WAIT left for the next run


class Sender(Client):
    """A closed-loop sender: its next line when its own echo is back."""

    def __init__(self, stats: Stats, hello: bytes, confirm: bytes, sid: int, to: bytes) -> None:
        super().__init__(stats, hello, confirm, sample=False)
        self.sid = sid
        self.to = to  # b"to|#rK|" or b"" (the lobby)
        self.seq = 0
        self.waiting = b""
        self.sent_at = 0
        self.timer: asyncio.TimerHandle | None = None
        self.lines = 0  # echoes in the window
        self.timeouts = 0
        self.echo_us = array("q")
        self.running = False

    def send_next(self) -> None:
        if not self.running or self.transport is None or self.transport.is_closing():
            return
        self.seq += 1
        self.sent_at = now = time.monotonic_ns()
        self.waiting = b":@b %d %d " % (self.sid, self.seq)
        self.transport.write(b"%s@b %d %d %d\n" % (self.to, self.sid, self.seq, now))
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(ECHO_TIMEOUT, self.timed_out)

    def timed_out(self) -> None:
        self.timeouts += 1
        self.send_next()

    def data_received(self, data: bytes) -> None:
        cut = data.rfind(b"\n") + 1
        if not cut:
            self.tail += data
            return
        chunk = self.tail + data[:cut] if self.tail else data[:cut]
        self.tail = data[cut:]
        if not self.set_up:
            if self.confirm not in chunk:
                return
            self.set_up = True
            if not self.ready.done():
                self.ready.set_result(None)
        if self.waiting and self.waiting in chunk:
            if self.stats.measuring:
                self.lines += 1
                self.echo_us.append((time.monotonic_ns() - self.sent_at) // 1000)
            self.waiting = b""
            self.send_next()

    def stop(self) -> None:
        self.running = False
        if self.timer is not None:
            self.timer.cancel()


async def connect(
    port: int, factory: Callable[[], Client], within: float = 60.0
) -> tuple[Client, float]:
    """A client connected and set up (within ``within`` seconds each); with the seconds
    it took."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    _, client = await asyncio.wait_for(loop.create_connection(factory, "127.0.0.1", port), within)
    try:
        await asyncio.wait_for(client.ready, within)
    except BaseException:
        client.close()
        raise
    return client, time.monotonic() - started


async def connect_all(
    factories: list[tuple[int, Callable[[], Client]]], stats: Stats, concurrency: int
) -> list[Client]:
    """Every (port, factory) connected and set up, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []

    async def one(port: int, factory: Callable[[], Client]) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    client, _ = await connect(port, factory)
                except OSError:  # TimeoutError and ConnectionError among them
                    if attempt == 2:
                        stats.failed += 1
                    else:
                        await asyncio.sleep(0.2)
                    continue
                clients.append(client)
                stats.ready += 1
                return

    await asyncio.gather(*(one(port, f) for port, f in factories))
    return clients


def room_of(cfg: dict[str, Any], index: int) -> str:
    return "#lobby" if cfg["mode"] == "lobby" else f"#r{index % cfg['rooms']}"


def percentiles(values: Any, scale: float = 1000.0) -> dict[str, float] | None:
    """p50/p90/p99/max of µs values, in ms."""
    ordered = sorted(values)
    if not ordered:
        return None

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / scale, 3)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] / scale, 3),
        "samples": len(ordered),
    }


async def worker(conn: Any, cfg: dict[str, Any]) -> None:
    """One load process: its receivers (role ``receivers``) or the senders and the churn
    (role ``driver``), answering the parent's commands on ``conn``."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    ports, mode = cfg["ports"], cfg["mode"]  # client i uses node i mod len(ports)

    def receiver(index: int) -> Callable[[], Client]:
        hello, confirm = setup_lines(mode, room_of(cfg, index))
        return lambda: Client(stats, hello, confirm, index % cfg["sample"] == 0)

    senders: list[Sender] = []
    if cfg["role"] == "driver":

        def sender(index: int) -> tuple[int, Callable[[], Client]]:
            room = room_of(cfg, index)
            hello, confirm = setup_lines(mode, room)
            to = b"" if mode == "lobby" else f"to|{room}|".encode()
            return ports[index % len(ports)], lambda: Sender(stats, hello, confirm, index, to)

        clients = await connect_all([sender(i) for i in cfg["indices"]], stats, 16)
        senders = [c for c in clients if isinstance(c, Sender)]
    else:
        factories = [(ports[i % len(ports)], receiver(i)) for i in cfg["indices"]]
        clients = await connect_all(factories, stats, cfg["concurrency"])
    conn.send({"ready": stats.ready, "failed": stats.failed, "dropped": stats.dropped})

    churners: set[Client] = set()
    churn = {"connects": 0, "closes": 0, "failed": 0}
    churn_setup_us = array("q")
    tasks: set[asyncio.Task[None]] = set()

    async def churn_one(index: int) -> None:
        try:
            port = ports[index % len(ports)]
            client, took = await connect(port, receiver(index), within=30.0)
        except OSError:  # TimeoutError and ConnectionError among them
            churn["failed"] += 1
            return
        churn["connects"] += 1
        if stats.measuring:
            churn_setup_us.append(int(took * 1e6))
        churners.add(client)
        await asyncio.sleep(cfg["churn_hold"])
        churners.discard(client)
        client.close()
        churn["closes"] += 1

    async def churning() -> None:
        period = 1.0 / cfg["churn_rate"]
        start, n = time.monotonic(), 0
        index = cfg["clients"]  # churners are numbered after the steady clients
        while True:
            n += 1
            task = loop.create_task(churn_one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
            await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))

    churner: asyncio.Task[None] | None = None
    while True:
        # a thread waits for the parent (the loop's add_reader would make the pipe
        # non-blocking, and a large send on it would then fail)
        command = await loop.run_in_executor(None, conn.recv)
        if command == "go":
            for s in senders:
                s.running = True
                s.send_next()
            if cfg["role"] == "driver" and cfg["churn_rate"] > 0:
                churner = loop.create_task(churning())
        elif command == "mark":
            stats.measuring = not stats.measuring
            conn.send(
                {
                    "deliveries": stats.deliveries,
                    "dropped": stats.dropped,
                    "lines": sum(s.lines for s in senders),
                    "timeouts": sum(s.timeouts for s in senders),
                    "churn": dict(churn),
                    "churners": len(churners),
                }
            )
        elif command == "stop":
            if churner is not None:
                churner.cancel()
            for task in list(tasks):
                task.cancel()
            for s in senders:
                s.stop()
            conn.send(
                {
                    "latencies": stats.latencies.tobytes(),
                    "echo_us": b"".join(s.echo_us.tobytes() for s in senders),
                    "churn_setup_us": churn_setup_us.tobytes(),
                    "lines_in": stats.lines_in,
                    "bytes_in": stats.bytes_in,
                    "malformed": stats.malformed,
                }
            )
            # the parent stops the server first: 10,000 disconnects at once would be an
            # offline line each to everyone left (minutes in the lobby), not measured
            await loop.run_in_executor(None, conn.recv)
            for c in [*clients, *churners]:
                c.close()
            await asyncio.sleep(0.1)
            return


def worker_main(conn: Any, cfg: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runner: Callable[..., Any] = asyncio.run
    if cfg["loop"] == "uvloop":
        import uvloop  # noqa: PLC0415 (optional: imkit's venv has it)

        runner = uvloop.run
    runner(worker(conn, cfg))


# -- the parent: the server, the rounds, the figures -----------------------------------


def imkit() -> list[str]:
    found = shutil.which("imkit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "imkit"]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds every process on the machine has used (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def memory_mib(pid: int) -> dict[str, float]:
    found = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": found.get("VmRSS", 0.0), "peak_rss_mib": found.get("VmHWM", 0.0)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A fresh ``imkit serve`` with its SQLite store in ``folder``."""

    def __init__(
        self,
        folder: str,
        max_clients: int,
        profile: Path | None = None,
        cluster: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.profile = profile
        server = imkit() if profile is None else [sys.executable, "-m", "cProfile"]
        if profile is not None:
            server += ["-o", str(profile), "-m", "imkit"]
        args = [*server, "serve", "--port", str(self.port), "--idle-timeout", "0"]
        args += ["--rate-exempt", "127.0.0.1", "--max-per-ip", "0", "--connect-rate", "0"]
        args += ["--max-clients", str(max_clients), "--log-level", "warning"]
        args += ["--admin-socket", f"{folder}/admin-{self.port}.sock"]
        if cluster is None:
            args += ["--db", f"{folder}/imkit.db"]
        else:  # a cluster keeps its history in Redis
            args += ["--cluster", cluster[0], "--cluster-name", cluster[1]]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"imkit serve did not start: {''.join(self.log)[-2000:]}")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:  # under cProfile it ends slowly, and writes its profile only if it ends
            return self.proc.wait(20 if self.profile is None else 300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


SYSCALLS = ("sendto", "sendmsg", "recvfrom", "epoll_wait", "epoll_pwait", "accept4")


def count_syscalls(pids: list[int]) -> subprocess.Popen[str] | None:
    """``perf stat`` counting the server's socket system calls (all its threads) until
    it is interrupted; None without perf (or without the right to trace)."""
    if not shutil.which("perf"):
        return None
    events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
    args = ["perf", "stat", "-x", ",", "-e", events, "-p", ",".join(map(str, pids))]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def syscalls_counted(perf: subprocess.Popen[str] | None) -> dict[str, int] | None:
    if perf is None:
        return None
    perf.send_signal(signal.SIGINT)
    try:
        _, err = perf.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        perf.kill()
        perf.wait()
        return None
    counts = {}
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_") and fields[0].isdigit():
            counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
    return counts or None


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    """A fresh redis-server without persistence on a free port, as bench/cluster.py's."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", folder, "--logfile", f"{folder}/redis.log"]
    redis = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return redis, f"redis://127.0.0.1:{port}"
        time.sleep(0.1)
    redis.kill()
    raise SystemExit("redis-server did not start")


def recv(conn: Any, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"no {what} from a load process in {timeout:.0f} s")
    return conn.recv()


def run_one(mode: str, args: argparse.Namespace, round_: int = 1) -> dict[str, Any]:
    senders = args.rooms * args.senders_per_room
    if mode == "lobby":
        sender_ids = list(range(senders))
    else:  # the first members of each room: i mod R is the room
        per_room = range(args.senders_per_room)
        sender_ids = [k + args.rooms * j for j in per_room for k in range(args.rooms)]
    chosen = set(sender_ids)
    receivers = [i for i in range(args.clients) if i not in chosen]
    churn_peak = int(args.churn_rate * (args.churn_hold + 5)) + 64
    base = {
        "ports": [],
        "mode": mode,
        "rooms": args.rooms,
        "clients": args.clients,
        "sample": args.sample,
        "concurrency": args.concurrency,
        "churn_rate": args.churn_rate,
        "churn_hold": args.churn_hold,
        "loop": args.loop,
    }
    record: dict[str, Any] = {
        "mode": mode,
        "clients": args.clients,
        "rooms": args.rooms if mode != "lobby" else 0,
        "members_per_room": args.clients // args.rooms if mode != "lobby" else args.clients,
        "senders": senders,
        "receivers_per_line": (args.clients // args.rooms - args.senders_per_room)
        if mode != "lobby"
        else args.clients - senders,
        "churn": {"rate_per_s": args.churn_rate, "hold_s": args.churn_hold},
        "nodes": args.nodes,
        "procs": args.procs,
        "loop": args.loop,
        "sample_every": args.sample,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="imkit-rooms-") as folder:
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = args.profile / f"{mode}-{round_}.prof"
            record["profile"] = str(profile)
        max_clients = max(args.clients + churn_peak + 64, 19_900)
        nodes: list[Server] = []
        redis: subprocess.Popen[bytes] | None = None
        procs: list[Any] = []
        pipes: list[Any] = []
        alive, status = False, None
        try:
            if args.nodes == 1:
                nodes.append(Server(folder, max_clients, profile))
            else:
                redis, url = start_redis(folder)
                name = f"rooms-{os.getpid()}-{round_}"
                for _ in range(args.nodes):
                    nodes.append(Server(folder, max_clients, None, (url, name)))
                record["cluster"] = {"nodes": args.nodes, "redis": url}
            base["ports"] = [n.port for n in nodes]
            pids = [n.proc.pid for n in nodes]
            # the server's CPU: every node's, and Redis'
            server_pids = pids + ([redis.pid] if redis is not None else [])
            rss_empty = sum(memory_mib(pid)["rss_mib"] for pid in pids)
            roles = [("driver", sender_ids)] + [
                ("receivers", receivers[p :: args.procs]) for p in range(args.procs)
            ]
            for role, indices in roles:
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(
                    target=worker_main, args=(theirs, {**base, "role": role, "indices": indices})
                )
                proc.start()
                procs.append(proc)
                pipes.append(ours)
            started = time.monotonic()
            ready = [recv(p, args.setup_timeout, "setup") for p in pipes]
            record["setup_s"] = round(time.monotonic() - started, 1)
            record["set_up"] = sum(r["ready"] for r in ready)
            record["setup_failed"] = sum(r["failed"] for r in ready)
            record["rss_set_up_mib"] = sum(memory_mib(pid)["rss_mib"] for pid in pids)
            record["rss_empty_mib"] = rss_empty
            for p in pipes:
                p.send("go")
            time.sleep(args.warmup)

            def snapshot() -> dict[str, Any]:
                loads = sum(process_cpu(p.pid) for p in procs)
                machine, srv = machine_busy(), sum(process_cpu(pid) for pid in server_pids)
                marks = []
                for p in pipes:
                    p.send("mark")
                for p in pipes:
                    marks.append(recv(p, 30, "mark"))
                return {
                    "t": time.monotonic(),
                    "server": srv,
                    "load": loads,
                    "machine": machine,
                    "marks": marks,
                }

            perf = count_syscalls(pids) if args.syscalls else None
            first = snapshot()
            time.sleep(args.duration)
            last = snapshot()
            syscalls = syscalls_counted(perf)
            memory = [memory_mib(pid) for pid in pids]
            record["rss_mib"] = round(sum(m["rss_mib"] for m in memory), 1)
            record["peak_rss_mib"] = round(sum(m["peak_rss_mib"] for m in memory), 1)
            for p in pipes:
                p.send("stop")
            results = [recv(p, 60, "result") for p in pipes]
            stopping = time.monotonic()
            alive = all(n.proc.poll() is None for n in nodes)
            for n in nodes:  # SIGTERM to all, then wait for each
                if n.proc.poll() is None:
                    n.proc.terminate()
            statuses = [n.stop() for n in nodes]
            status = None if None in statuses else max(statuses, default=None)
            record["server_stop_s"] = round(time.monotonic() - stopping, 1)
            for p in pipes:
                p.send("exit")
        finally:
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            for n in nodes:
                if n.proc.poll() is None:
                    n.stop()
            if redis is not None:
                redis.terminate()
                redis.wait(10)
        record["server_alive_after_run"] = alive
        record["server_exit"] = status
        record["server_log_tail"] = [line.rstrip() for n in nodes for line in n.log[-5:]]

    window = last["t"] - first["t"]

    def delta(key: str) -> int:
        return sum(b[key] for b in last["marks"]) - sum(a[key] for a in first["marks"])

    deliveries, lines = delta("deliveries"), delta("lines")
    churn0, churn1 = first["marks"][0]["churn"], last["marks"][0]["churn"]
    latencies = array("q")
    echo = array("q")
    churn_setup = array("q")
    for r in results:
        latencies.frombytes(r["latencies"])
        echo.frombytes(r["echo_us"])
        churn_setup.frombytes(r["churn_setup_us"])
    lines_in = sum(r["lines_in"] for r in results)
    server_cpu = last["server"] - first["server"]
    load_cpu = last["load"] - first["load"]
    machine = last["machine"] - first["machine"]
    record.update(
        {
            "window_s": round(window, 2),
            "deliveries": deliveries,
            "deliveries_per_s": round(deliveries / window),
            "lines": lines,
            "lines_per_s": round(lines / window, 1),
            "deliveries_per_line": round(deliveries / lines, 1) if lines else None,
            "latency_ms": percentiles(latencies),
            "echo_ms": percentiles(echo),
            "lines_in_per_s": round(lines_in / window),
            "presence_lines_per_s": round((lines_in - deliveries) / window),
            "bytes_in_per_s": round(sum(r["bytes_in"] for r in results) / window),
            "malformed": sum(r["malformed"] for r in results),
            "echo_timeouts": delta("timeouts"),
            "dropped": sum(m["dropped"] for m in last["marks"]),
        }
    )
    record["churn"].update(
        {
            "connects": churn1["connects"] - churn0["connects"],
            "closes": churn1["closes"] - churn0["closes"],
            "failed": churn1["failed"] - churn0["failed"],
            "online": last["marks"][0]["churners"],
            "setup_ms": percentiles(churn_setup),
        }
    )
    if syscalls:
        sends = syscalls.get("sendto", 0) + syscalls.get("sendmsg", 0)
        record["syscalls"] = {
            **syscalls,
            "sends_per_s": round(sends / window),
            "lines_per_send": round(lines_in / sends, 2) if sends else None,
            "sends_per_delivery": round(sends / deliveries, 3) if deliveries else None,
        }
    record["cpu"] = {
        "server_pct": round(server_cpu / window * 100),
        "load_pct": round(load_cpu / window * 100),
        "other_pct": round((machine - server_cpu - load_cpu) / window * 100),
        "server_us_per_delivery": round(server_cpu / deliveries * 1e6, 2) if deliveries else None,
        "server_us_per_line": round(server_cpu / lines * 1e6) if lines else None,
    }
    return record


def median(records: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for record in records:
        value: Any = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    rows = [
        "| mode | runs | deliveries/s | lines/s | deliveries/line | p50 ms | p99 ms | max ms "
        "| presence lines/s | churn connects/s | churn setup p99 ms | server CPU % "
        "| server µs/delivery | lines/send | server RSS MiB | load CPU % | other CPU % "
        "| dropped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, records in runs.items():
        if not records:
            continue
        window = median(records, "window_s") or 1.0
        connects = median(records, "churn", "connects")
        rows.append(
            f"| {mode} | {len(records)} | {fmt(median(records, 'deliveries_per_s'))} "
            f"| {fmt(median(records, 'lines_per_s'), 1)} "
            f"| {fmt(median(records, 'deliveries_per_line'))} "
            f"| {fmt(median(records, 'latency_ms', 'p50'), 2)} "
            f"| {fmt(median(records, 'latency_ms', 'p99'), 2)} "
            f"| {fmt(median(records, 'latency_ms', 'max'), 1)} "
            f"| {fmt(median(records, 'presence_lines_per_s'))} "
            f"| {fmt(None if connects is None else connects / window, 1)} "
            f"| {fmt(median(records, 'churn', 'setup_ms', 'p99'), 1)} "
            f"| {fmt(median(records, 'cpu', 'server_pct'))} "
            f"| {fmt(median(records, 'cpu', 'server_us_per_delivery'), 2)} "
            f"| {fmt(median(records, 'syscalls', 'lines_per_send'), 2)} "
            f"| {fmt(median(records, 'rss_mib'), 0)} "
            f"| {fmt(median(records, 'cpu', 'load_pct'))} "
            f"| {fmt(median(records, 'cpu', 'other_pct'))} "
            f"| {fmt(median(records, 'dropped'))} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, help="steady clients (default 10000; quick 1000)")
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--senders-per-room", type=int, default=1)
    parser.add_argument("--churn-rate", type=float, default=33.0, help="connects a second")
    parser.add_argument("--churn-hold", type=float, help="seconds a churner stays (10; quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds before the window (12; quick 4)")
    parser.add_argument("--duration", type=float, help="the window, seconds (20; quick 5)")
    parser.add_argument("--rounds", type=int, help="(3; quick 1)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["rooms", "lobby"])
    parser.add_argument("--procs", type=int, default=2, help="receiver processes")
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="more than 1: a cluster of that many nodes on a fresh redis-server (client i "
        "dials node i mod N; history in Redis, not SQLite)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="setups at once, per process")
    parser.add_argument("--sample", type=int, default=4, help="every Nth receiver times lines")
    parser.add_argument("--setup-timeout", type=float, default=600.0)
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    parser.add_argument(
        "--syscalls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count the server's socket system calls over the window with perf stat, if found",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the server under cProfile (slower: for where its time goes, not for "
        "figures); DIR/MODE-ROUND.prof, setup included",
    )
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between runs")
    parser.add_argument("--quick", action="store_true", help="small defaults: a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--json", action="store_true", help="every record on stdout too")
    args = parser.parse_args()
    quick = args.quick
    for name, full, small in (
        ("clients", 10000, 1000),
        ("churn_hold", 10.0, 3.0),
        ("warmup", 12.0, 4.0),
        ("duration", 20.0, 5.0),
        ("rounds", 3, 1),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.clients < args.rooms * (args.senders_per_room + 1):
        parser.error("every room needs its senders and at least one receiver")
    if args.loop == "auto":
        try:
            import uvloop  # noqa: F401, PLC0415

            args.loop = "uvloop"
        except ImportError:
            args.loop = "asyncio"

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_path = args.out / f"rooms-{stamp}.jsonl"
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.modes}
    with raw_path.open("w") as raw:
        for round_ in range(1, args.rounds + 1):
            for mode in args.modes:
                print(f"round {round_}/{args.rounds}: {mode}", file=sys.stderr, flush=True)
                record = run_one(mode, args, round_)
                record["round"] = round_
                raw.write(json.dumps(record) + "\n")
                raw.flush()
                runs[mode].append(record)
                if args.json:
                    print(json.dumps(record), flush=True)
                print(
                    f"  {record['deliveries_per_s']:,} deliveries/s, "
                    f"{record['lines_per_s']:,} lines/s, p99 "
                    f"{(record['latency_ms'] or {}).get('p99')} ms, setup {record['setup_s']} s, "
                    f"server {record['cpu']['server_pct']} %, load {record['cpu']['load_pct']} %, "
                    f"other {record['cpu']['other_pct']} %, dropped {record['dropped']}",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(args.pause)
    print(table(runs), file=sys.stderr if args.json else sys.stdout)
    print(f"raw runs: {raw_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
