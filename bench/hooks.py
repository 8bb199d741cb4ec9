#!/usr/bin/env python3
"""Incoming webhooks under load (issue 30): the HTTP answer and the delivery latency of
``POST /hooks/KEY`` while a room of members chats.

    bench/hooks.py [--hooks 150] [--rate 100] [--duration 20] [--members 200]
                   [--chat-rate 20] [--chat-senders 10] [--connections 32]
                   [--rounds 3] [--modes one cluster] [--redis URL] [--out DIR] [--json]
                   [--profile DIR]
    bench/hooks.py --quick            # 20 members, 10 hooks, 2 s, one round: a smoke test

Every run starts a fresh server and stops it afterwards. ``one``: `imkit serve --port P
--web 127.0.0.1:W --idle-timeout 0 --rate-exempt 127.0.0.1 --max-per-ip 0
--connect-rate 0 --log-level warning --admin-socket TMP/admin.sock --db TMP/imkit.db`
(the SQLite store, in a temporary folder). ``cluster``: a fresh `redis-server` without
persistence (or ``--redis URL``: one of yours, with a fresh --cluster-name each run)
and two such nodes with ``--cluster URL`` instead of ``--db``; POSTs go to node 1's web
port, the watcher is on node 2, members alternate between the nodes. Modes alternate
round by round (one, cluster, one, ...).

Set-up, through the real CLI and admin socket: `imkit room add '#bench'`, `imkit hook
add '#bench' --name hook0` (its printed URL is used), then ``--hooks`` - 1 more hooks
through the admin socket's ``hook_add`` (imkit.client.admin: what `imkit hook add`
sends, without starting a process for each). Each hook's rate limit is fixed by the
server (imkit/server/hooks.py: a burst of 30, then 1 a second; there is no setting,
and the bench does not change it), so the load comes from many hooks: POST i goes to
hook i mod H, each hook posting ``rate / hooks`` times a second (at most 1 unless you
want to see 429s).

Then ``--members`` JSON Lines clients (in a second process) say hello and join
``#bench``; the first ``--chat-senders`` of them send ``--chat-rate`` messages a second
in all, round robin, for the whole run (the background chat). One watcher (JSON, in
this process) joins too. The POSTs are open loop: POST i is due at i / rate seconds,
whatever the others are doing, and is sent on a free keep-alive HTTP/1.1 connection of
a pool (at most ``--connections``; a connection is replaced after 100 requests, the
server's own limit per connection, imkit/web/http.py). Each POST's body is
``{"text": "hb SEQ HOOK"}``; for each it records

* the HTTP answer latency: from writing the request to reading the whole response
  (200 means stored: SQLite committed, or Redis ran its script);
* the delivery latency: from the same start until the watcher reads the bot message
  with that text (``"bot":true``);
* the wait: from when it was due until it was written (a pool too small, or this
  process late: the load generator's own lag, shown so that it is not mistaken for
  the server's).

Before the window, 1 s of chat alone; the window is ``--duration`` seconds of POSTs;
after it, up to 5 s for late deliveries (a 200 whose message never reached the watcher
is counted undelivered). The members count every message event they read, bot or not:
the chat deliveries a second during the window. The CPU of the server (the nodes and
Redis), of the two bench processes and of everything else is read from /proc over the
window, and so is the time the server's threads (and the bench's) were runnable but
waited for a CPU (schedstat): on a shared machine, the part of a latency that is no
code's.

It prints a table of medians per mode and writes every run's record to
DIR/hooks-DATE.jsonl. Standard library plus imkit's own admin client (uvloop is used
when it can be imported, as in imkit's venv); run it from the project's virtual
environment, so that `imkit` is this checkout's.
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from imkit.client import admin

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
ROOM = "#bench"
MODES = ("one", "cluster")
# imkit/web/http.py's MAX_REQUESTS: the server closes a connection after this many.
PER_CONNECTION = 100
# A connection idle this long is not reused (the server's request timeout is 10 s).
IDLE_REUSE = 5.0
POST_TIMEOUT = 30.0
GRACE = 5.0  # seconds after the window for late deliveries
MESSAGE = b'"type":"message"'
BOT = b'"bot":true'


def imkit() -> list[str]:
    found = shutil.which("imkit", path=str(Path(sys.executable).parent)) or shutil.which("imkit")
    return [found] if found else [sys.executable, "-m", "imkit"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def runqueue_wait(pid: int) -> float:
    """Seconds the threads of one process have waited for a CPU while runnable
    (/proc/PID/task/*/schedstat, the second field; 0 once it is gone): on a shared
    machine, the part of a latency that is nobody's code."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(stat.read_text().split()[1])
    return total / 1e9


def machine_busy() -> float:
    """CPU seconds every process on the machine has used (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50/p95/p99/max of seconds, in ms."""
    ordered = sorted(values)
    if not ordered:
        return None

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 2),
        "samples": len(ordered),
    }


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # noqa: PLC0415

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.new_event_loop()


# -- the servers ---------------------------------------------------------------------


class Server:
    """A fresh ``imkit serve`` with a web port and an admin socket: SQLite in ``folder``,
    or a cluster node on ``cluster`` (its Redis URL and cluster name)."""

    def __init__(
        self, folder: str, cluster: tuple[str, str] | None = None, profile: Path | None = None
    ) -> None:
        self.port, self.web_port = free_port(), free_port()
        self.socket = f"{folder}/admin-{self.port}.sock"
        self.profile = profile
        server = imkit() if profile is None else [sys.executable, "-m", "cProfile"]
        if profile is not None:
            server += ["-o", str(profile), "-m", "imkit"]
        args = [*server, "serve", "--port", str(self.port)]
        args += ["--web", f"127.0.0.1:{self.web_port}", "--idle-timeout", "0"]
        args += ["--rate-exempt", "127.0.0.1", "--max-per-ip", "0", "--connect-rate", "0"]
        args += ["--log-level", "warning", "--admin-socket", self.socket]
        if cluster is None:
            args += ["--db", f"{folder}/imkit.db"]
        else:  # a cluster keeps its history (and its hooks) in Redis
            args += ["--cluster", cluster[0], "--cluster-name", cluster[1]]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(_answers(p) for p in (self.port, self.web_port)) and Path(self.socket).exists():
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"imkit serve did not start: {''.join(self.log)[-2000:]}")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*imkit(), *args, "--admin-socket", self.socket], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"imkit {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:  # under cProfile it ends slowly, and writes its profile only if it ends
            return self.proc.wait(20 if self.profile is None else 300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


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


def add_hooks(server: Server, count: int) -> list[str]:
    """The room and ``count`` incoming hooks on it: the paths ``/hooks/KEY`` to POST to.
    The room and the first hook through the real CLI (its printed URL), the others
    through the admin socket (the same request)."""
    server.cli("room", "add", ROOM)
    printed = server.cli("hook", "add", ROOM, "--name", "hook0").splitlines()
    found = re.fullmatch(r"http://[^/]+(/hooks/[A-Za-z0-9_-]{43})", printed[1])
    if found is None:
        raise SystemExit(f"imkit hook add printed no URL: {printed}")
    paths = [found.group(1)]

    async def more() -> None:
        for i in range(1, count):
            request = {"type": "hook_add", "room": ROOM, "name": f"hook{i}"}
            reply = await admin.request(Path(server.socket), request)
            paths.append("/" + reply["urls"][0].split("/", 3)[3])  # http://HOST:PORT/hooks/KEY

    anyio.run(more)
    return paths


# -- the members (a second process) --------------------------------------------------


class Counts:
    def __init__(self) -> None:
        self.messages = 0  # message events read by members, bot or not
        self.bots = 0  # of which posted by hooks
        self.errors = 0  # error events
        self.sent = 0  # chat messages sent
        self.dropped = 0  # connections the server closed


class Member(asyncio.Protocol):
    """A JSON client: hello, join #bench, then counts the message events it reads."""

    def __init__(self, counts: Counts, name: str) -> None:
        self.counts, self.name = counts, name
        self.tail = b""
        self.joined = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] (uvloop's is not a subclass)
        hello = {"type": "hello", "v": 1, "name": self.name, "id": 1}
        join = {"type": "join", "room": ROOM, "id": 2}
        transport.write(f"{json.dumps(hello)}\n{json.dumps(join)}\n".encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        cut = data.rfind(b"\n") + 1
        if not cut:
            self.tail += data
            return
        chunk = self.tail + data[:cut] if self.tail else data[:cut]
        self.tail = data[cut:]
        if not self.joined.done():
            if b'"type":"joined"' in chunk:
                self.joined.set_result(None)
            elif b'"type":"error"' in chunk:
                self.joined.set_exception(RuntimeError(chunk.decode(errors="replace")))
            return
        self.counts.messages += chunk.count(MESSAGE)
        self.counts.bots += chunk.count(BOT)
        self.counts.errors += chunk.count(b'"type":"error"')

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.counts.dropped += 1
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"{self.name}: closed before joining"))

    def send(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            line = {"type": "message", "room": ROOM, "text": text}
            self.transport.write(json.dumps(line).encode() + b"\n")


async def _members(conn: Any, config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    counts = Counts()
    members: list[Member] = []
    ports = config["ports"]
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with gate:
            member = Member(counts, f"m{i}")
            port = ports[i % len(ports)]
            await loop.create_connection(lambda: member, "127.0.0.1", port)
            await asyncio.wait_for(member.joined, 60)
            members.append(member)

    await asyncio.gather(*(one(i) for i in range(config["members"])))
    conn.send({"ready": len(members)})

    async def chat() -> None:
        senders = members[: config["chat_senders"]]
        rate = config["chat_rate"]
        if not senders or rate <= 0:
            return
        start, seq = time.monotonic(), 0
        while True:
            senders[seq % len(senders)].send(f"chat {seq}")
            counts.sent += 1
            seq += 1
            await asyncio.sleep(max(0.0, start + seq / rate - time.monotonic()))

    def snapshot() -> dict[str, int]:
        return dict(vars(counts))

    chatting: asyncio.Task[None] | None = None
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "go":
            chatting = asyncio.create_task(chat())
        elif command == "mark":
            conn.send(snapshot())
        elif command == "stop":
            if chatting is not None:
                chatting.cancel()
            for member in members:
                member.closing = True
                if member.transport is not None:
                    member.transport.close()
            conn.send(snapshot())
            return


def members_main(conn: Any, config: dict[str, Any]) -> None:
    loop = new_loop()
    try:
        loop.run_until_complete(_members(conn, config))
    finally:
        loop.close()


def recv(conn: Any, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"no {what} from the members' process in {timeout:.0f} s")
    return conn.recv()


# -- the driver: POSTs and the watcher -----------------------------------------------


class Watcher(Member):
    """A member that reads the bot messages' texts: ``hb SEQ HOOK`` -> when it read it."""

    def __init__(self, counts: Counts, name: str) -> None:
        super().__init__(counts, name)
        self.seen: dict[int, float] = {}

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()  # before anything else: the arrival of the chunk
        if not self.joined.done():
            super().data_received(data)
            return
        text = self.tail + data
        cut = text.rfind(b"\n") + 1
        self.tail = text[cut:]
        for line in text[:cut].split(b"\n"):
            if BOT in line:
                words = str(json.loads(line).get("text", "")).split()
                if len(words) == 3 and words[0] == "hb":
                    self.seen.setdefault(int(words[1]), now)


class Connection:
    """One keep-alive HTTP/1.1 connection to the web port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = 0
        self.last = time.monotonic()

    def reusable(self) -> bool:
        return self.used < PER_CONNECTION and time.monotonic() - self.last < IDLE_REUSE

    async def post(self, host: str, path: str, body: bytes) -> tuple[int, bool]:
        """The response's status, and whether the server will close the connection."""
        self.used += 1
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.last = time.monotonic()
        return status, headers.get("connection", "").lower() == "close"

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections, opened when none is free, at most ``limit``."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
        self.opened = 0  # open now
        self.connects = 0  # ever opened

    async def get(self) -> Connection:
        while True:
            if self.idle.empty() and self.opened < self.limit:
                self.opened += 1
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    self.opened -= 1
                    raise
                self.connects += 1
                return Connection(reader, writer)
            connection = await self.idle.get()
            if connection.reusable():
                return connection
            self.drop(connection)

    def put(self, connection: Connection) -> None:
        self.idle.put_nowait(connection)

    def drop(self, connection: Connection) -> None:
        connection.close()
        self.opened -= 1


async def drive(config: dict[str, Any], members: Any) -> dict[str, Any]:
    """The watcher, then "go" (the chat), 1 s of chat alone, the window of POSTs, the
    grace for late deliveries: what was measured."""
    loop = asyncio.get_running_loop()
    counts = Counts()
    watcher = Watcher(counts, "watcher")
    await loop.create_connection(lambda: watcher, "127.0.0.1", config["watch_port"])
    await asyncio.wait_for(watcher.joined, 30)
    members.send("go")
    await asyncio.sleep(1.0)
    pool = Pool(config["post_port"], config["connections"])
    host = f"127.0.0.1:{config['post_port']}"
    paths: list[str] = config["paths"]
    rate, total = config["rate"], int(config["rate"] * config["duration"])
    posts: list[dict[str, Any]] = []
    statuses: Counter[str] = Counter()

    async def post(seq: int, due: float) -> None:
        hook = seq % len(paths)
        body = json.dumps({"text": f"hb {seq} {hook}"}).encode()
        try:
            connection = await pool.get()
        except OSError as error:
            statuses[f"connect: {type(error).__name__}"] += 1
            return
        start = time.monotonic()
        try:
            status, closing = await asyncio.wait_for(
                connection.post(host, paths[hook], body), POST_TIMEOUT
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            statuses[type(error).__name__] += 1
            pool.drop(connection)
            return
        end = time.monotonic()
        if closing:
            pool.drop(connection)
        else:
            pool.put(connection)
        statuses[str(status)] += 1
        posts.append({"seq": seq, "status": status, "due": due, "start": start, "end": end})

    def marks() -> dict[str, Any]:
        members.send("mark")
        return {
            "t": time.monotonic(),
            "cpu": {k: sum(process_cpu(p) for p in pids) for k, pids in config["pids"].items()},
            "runq": {k: sum(runqueue_wait(p) for p in pids) for k, pids in config["pids"].items()},
            "machine": machine_busy(),
            "members": recv(members, 30, "mark"),
        }

    first = marks()
    begin = time.monotonic()
    tasks = set()
    for seq in range(total):
        due = begin + seq / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        task = asyncio.create_task(post(seq, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.sleep(max(0.0, begin + total / rate - time.monotonic()))
    last = marks()
    if tasks:
        await asyncio.wait(set(tasks))
    stored = {p["seq"] for p in posts if p["status"] == 200}
    for _ in range(int(GRACE / 0.05)):  # polling the dict the watcher fills
        if stored <= watcher.seen.keys():
            break
        await asyncio.sleep(0.05)
    watcher.closing = True
    if watcher.transport is not None:
        watcher.transport.close()
    while pool.opened and not pool.idle.empty():
        pool.drop(pool.idle.get_nowait())
    delivery = [watcher.seen[p["seq"]] - p["start"] for p in posts if p["seq"] in watcher.seen]
    return {
        "first": first,
        "last": last,
        "posts": total,
        "statuses": dict(statuses),
        "http_ms": percentiles([p["end"] - p["start"] for p in posts if p["status"] == 200]),
        "delivery_ms": percentiles(delivery),
        "wait_ms": percentiles([p["start"] - p["due"] for p in posts]),
        "answered_s": max((p["end"] for p in posts), default=begin) - begin,
        "stored": len(stored),
        "undelivered": len(stored - watcher.seen.keys()),
        "delivered_not_200": len(watcher.seen.keys() - stored),
        "http_connects": pool.connects,
    }


def run_one(mode: str, args: argparse.Namespace, round_: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "mode": mode,
        "hooks": args.hooks,
        "rate": args.rate,
        "per_hook_rate": round(args.rate / args.hooks, 3),
        "duration_s": args.duration,
        "members": args.members,
        "chat_rate": args.chat_rate,
        "chat_senders": args.chat_senders,
        "connections": args.connections,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="imkit-hooks-") as folder:
        nodes: list[Server] = []
        redis: subprocess.Popen[bytes] | None = None
        proc = None
        try:
            profile = None
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"{mode}-{round_}.prof"
                record["profile"] = str(profile)
            if mode == "one":
                nodes.append(Server(folder, None, profile))
            else:
                if args.redis:
                    url = args.redis
                else:
                    redis, url = start_redis(folder)
                name = f"hooks-{os.getpid()}-{round_}-{time.time_ns()}"
                # the profile is node 1's: the one that answers the POSTs
                nodes += [Server(folder, (url, name), profile if i == 0 else None) for i in (0, 1)]
                record["redis"] = "external" if args.redis else "fresh"
            paths = add_hooks(nodes[0], args.hooks)
            ours, theirs = ctx.Pipe()
            config = {
                "ports": [n.port for n in nodes],
                "members": args.members,
                "chat_rate": args.chat_rate,
                "chat_senders": args.chat_senders,
            }
            proc = ctx.Process(target=members_main, args=(theirs, config))
            proc.start()
            started = time.monotonic()
            record["members_ready"] = recv(ours, 120, "setup")["ready"]
            record["setup_s"] = round(time.monotonic() - started, 1)
            server_pids = [n.proc.pid for n in nodes] + ([redis.pid] if redis else [])
            drive_config = {
                "watch_port": nodes[-1].port,
                "post_port": nodes[0].web_port,
                "paths": paths,
                "rate": args.rate,
                "duration": args.duration,
                "connections": args.connections,
                "pids": {"server": server_pids, "bench": [os.getpid(), proc.pid]},
            }
            loop = new_loop()
            try:
                result = loop.run_until_complete(drive(drive_config, ours))
            finally:
                loop.close()
            ours.send("stop")
            recv(ours, 30, "stop")
            alive = all(n.proc.poll() is None for n in nodes)
        finally:
            if proc is not None:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            for node in nodes:
                node.stop()
            if redis is not None:
                redis.terminate()
                redis.wait(10)
        record["server_alive_after_run"] = alive
        record["server_log_tail"] = [line.rstrip() for n in nodes for line in n.log[-5:]]
    first, last = result.pop("first"), result.pop("last")
    window = last["t"] - first["t"]
    m0, m1 = first["members"], last["members"]
    bots = m1["bots"] - m0["bots"]
    chat = (m1["messages"] - m0["messages"]) - bots
    machine = last["machine"] - first["machine"]
    server = last["cpu"]["server"] - first["cpu"]["server"]
    bench = last["cpu"]["bench"] - first["cpu"]["bench"]
    record.update(result)
    record.update(
        {
            "window_s": round(window, 2),
            # stored POSTs over the window, or until the last answer if that came later
            "posts_per_s": round(result["stored"] / max(result["answered_s"], args.duration), 1),
            "chat_sent_per_s": round((m1["sent"] - m0["sent"]) / window, 1),
            "chat_deliveries_per_s": round(chat / window),
            "bot_deliveries_per_s": round(bots / window),
            "member_errors": m1["errors"],
            "dropped": m1["dropped"],
            "cpu": {
                "server_pct": round(server / window * 100),
                "bench_pct": round(bench / window * 100),
                "other_pct": round((machine - server - bench) / window * 100),
            },
            # ms a second that the server's threads (the bench's) were runnable but
            # waited for a CPU: the machine's share of the latencies
            "runqueue_ms_per_s": {
                key: round((last["runq"][key] - first["runq"][key]) / window * 1000, 1)
                for key in ("server", "bench")
            },
        }
    )
    return record


# -- the report ----------------------------------------------------------------------


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


def errors(records: list[dict[str, Any]]) -> str:
    """Every status but 200, summed over the runs."""
    total: Counter[str] = Counter()
    for record in records:
        total.update({k: v for k, v in record["statuses"].items() if k != "200"})
    return ", ".join(f"{k}: {v}" for k, v in sorted(total.items())) or "none"


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    rows = [
        "| mode | runs | posts/s | HTTP p50 / p95 / p99 / max ms "
        "| delivery p50 / p95 / p99 / max ms | wait p99 ms | chat deliveries/s "
        "| server CPU % | bench CPU % | other CPU % | server run-queue wait ms/s "
        "| undelivered | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, records in runs.items():
        if not records:
            continue

        def four(key: str, records: list[dict[str, Any]] = records) -> str:
            return " / ".join(fmt(median(records, key, q), 1) for q in ("p50", "p95", "p99", "max"))

        rows.append(
            f"| {mode} | {len(records)} | {fmt(median(records, 'posts_per_s'), 1)} "
            f"| {four('http_ms')} | {four('delivery_ms')} "
            f"| {fmt(median(records, 'wait_ms', 'p99'), 1)} "
            f"| {fmt(median(records, 'chat_deliveries_per_s'))} "
            f"| {fmt(median(records, 'cpu', 'server_pct'))} "
            f"| {fmt(median(records, 'cpu', 'bench_pct'))} "
            f"| {fmt(median(records, 'cpu', 'other_pct'))} "
            f"| {fmt(median(records, 'runqueue_ms_per_s', 'server'), 1)} "
            f"| {sum(r['undelivered'] for r in records)} | {errors(records)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hooks", type=int, help="incoming hooks (150; quick 10)")
    parser.add_argument("--rate", type=float, help="POSTs a second in all (100; quick 10)")
    parser.add_argument("--duration", type=float, help="seconds of POSTs (20; quick 2)")
    parser.add_argument("--members", type=int, help="JSON members of the room (200; quick 20)")
    parser.add_argument("--chat-rate", type=float, help="chat messages a second (20; quick 5)")
    parser.add_argument("--chat-senders", type=int, default=10, help="members who chat")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections at most")
    parser.add_argument("--rounds", type=int, help="(3; quick 1)")
    parser.add_argument("--modes", nargs="+", choices=MODES, help="(one cluster; quick one)")
    parser.add_argument(
        "--redis", metavar="URL", help="cluster mode on this Redis instead of a fresh one"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the server (node 1) under cProfile (slower: for where its time goes, not "
        "for figures); DIR/MODE-ROUND.prof, setup included",
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--quick", action="store_true", help="small defaults: a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--json", action="store_true", help="every record on stdout too")
    args = parser.parse_args()
    for name, full, small in (
        ("hooks", 150, 10),
        ("rate", 100.0, 10.0),
        ("duration", 20.0, 2.0),
        ("members", 200, 20),
        ("chat_rate", 20.0, 5.0),
        ("rounds", 3, 1),
        ("modes", list(MODES), ["one"]),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    if args.hooks < 1 or args.rate <= 0 or args.members < args.chat_senders:
        parser.error("needs a hook, a rate above 0, and at least --chat-senders members")
    if args.rate / args.hooks > 1:
        print(
            f"note: {args.rate / args.hooks:.2f} POSTs a second per hook: over the server's "
            "1 a second after a burst of 30, expect 429s",
            file=sys.stderr,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_path = args.out / f"hooks-{stamp}.jsonl"
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
                http, delivery = record["http_ms"] or {}, record["delivery_ms"] or {}
                print(
                    f"  {record['posts_per_s']} posts/s, HTTP p99 {http.get('p99')} ms, "
                    f"delivery p99 {delivery.get('p99')} ms, chat "
                    f"{record['chat_deliveries_per_s']:,} deliveries/s, statuses "
                    f"{record['statuses']}, undelivered {record['undelivered']}, server "
                    f"{record['cpu']['server_pct']} %, bench {record['cpu']['bench_pct']} %",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(args.pause)
    print(table(runs), file=sys.stderr if args.json else sys.stdout)
    print(f"raw runs: {raw_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
