"""A real ``redis-server`` for the cluster tests, and ``imkit serve --cluster`` nodes on it.

Each test starts its own Redis on a free loopback port, without persistence, in a
temporary folder, and its own nodes under a cluster name of its own: nothing is shared
between tests and nothing is mocked."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support import (
    TIMEOUT,
    LineClient,
    ServerProcess,
    free_port,
    imkit_env,
    run_imkit,
    start_server_process,
)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK)
# .ci/run installs Debian's redis-server: there the cluster tests always run (the
# others skip: tests/conftest.py).


class RedisServer:
    """``redis-server`` on 127.0.0.1:PORT, with no snapshots and no AOF (it keeps
    nothing on disk: a restart starts empty) unless ``options`` (redis-server's own,
    given after those) say otherwise; its files are in ``folder``. Its output goes to
    ``folder/redis.log``."""

    def __init__(self, folder: Path, port: int | None = None, options: Sequence[str] = ()) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.options = list(options)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, **options: Any) -> redis.Redis:
        """A redis-py client that does not retry: a refused connection fails at once."""
        options.setdefault("decode_responses", True)
        options.setdefault("socket_timeout", 5)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def start(self, timeout: float = 15) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - closed below
        try:
            self.proc = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "yes",
                    *self.options,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        probe = self.client(socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError(f"redis-server did not start:\n{self.log()}")
                time.sleep(0.05)
        finally:
            probe.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (nothing to save: no snapshots, no AOF), or SIGKILL if it does not
        go within ``timeout``."""
        if not self.running():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        """Stop, and start again on the same port (empty, unless ``options`` keep data)."""
        self.stop()
        self.start()

    def wait_synced(self, replica: RedisServer, timeout: float = 15) -> None:
        """Wait until ``replica`` (``--replicaof`` this one) has everything written here."""
        deadline = time.monotonic() + timeout
        with self.client() as primary, replica.client() as copy:
            while True:
                done = primary.info("replication")["master_repl_offset"]
                info = copy.info("replication")
                if info.get("master_link_status") == "up" and info["slave_repl_offset"] >= done:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the replica did not catch up: {info}")
                time.sleep(0.05)

    def clients(self) -> list[dict[str, Any]]:
        with self.client() as r:
            listed: list[dict[str, Any]] = r.client_list()
            return listed

    def kill_clients_named(self, name: str) -> int:
        """CLIENT KILL ID for each connection called ``name`` (CLIENT SETNAME)."""
        killed = 0
        with self.client() as r:
            for entry in r.client_list():
                if entry.get("name") == name:
                    killed += int(r.client_kill_filter(_id=entry["id"]))
        return killed

    def kill_clients(self, kind: str) -> int:
        """CLIENT KILL TYPE kind (normal, pubsub, replica, master)."""
        with self.client() as r:
            return int(r.client_kill_filter(_type=kind))

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port in a folder of its own, stopped (and the
    folder removed) at the end."""
    folder = Path(tempfile.mkdtemp(prefix="imkit-redis-", dir="/tmp"))
    server = RedisServer(folder)
    for attempt in range(3):
        try:
            server.start()
            break
        except AssertionError:
            if attempt == 2:
                raise
            server = RedisServer(folder)  # the free port was taken meanwhile: another one
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


JOINED = re.compile(r"cluster: node ([0-9a-f]{8}) joined cluster (\S+) on (\S+)")


@dataclass
class Node:
    """One ``imkit serve --cluster`` process."""

    process: ServerProcess
    id: str
    env: dict[str, str]

    @property
    def address(self) -> str:
        return self.process.address

    @property
    def port(self) -> str:
        return self.address.rsplit(":", 1)[1]

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``imkit ARGS --port PORT`` against this node's admin socket."""
        return run_imkit(*args, "--port", self.port, env=self.env)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def log(self) -> str:
        return self.process.stderr()

    def log_count(self, text: str) -> int:
        return sum(text in line for line in list(self.process.log))

    def wait_log(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.process.log):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.process.proc.poll() is None


@dataclass
class Cluster:
    """Nodes of one cluster (a name of its own) on one Redis."""

    redis: RedisServer
    folder: Path
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    node_timeout: float = 1.5
    nodes: list[Node] = field(default_factory=list)
    url: str = ""  # what the nodes are given (--cluster): Redis' own when empty

    @property
    def redis_url(self) -> str:
        return self.url or self.redis.url

    def env(self) -> dict[str, str]:
        # The admin sockets (one per port) live in the test's own folder.
        return imkit_env(XDG_RUNTIME_DIR=str(self.folder))

    def serve_args(self, *extra: str, node_timeout: float | None = None) -> list[str]:
        timeout = self.node_timeout if node_timeout is None else node_timeout
        return [
            "--cluster",
            self.redis_url,
            "--cluster-name",
            self.name,
            "--node-timeout",
            str(timeout),
            "--idle-timeout",
            "0",
            "--rate",
            "0",
            *extra,
        ]

    def start_node(self, *extra: str, node_timeout: float | None = None) -> Node:
        env = self.env()
        process = start_server_process(*self.serve_args(*extra, node_timeout=node_timeout), env=env)
        found = JOINED.search(process.stderr())
        if found is None:
            process.stop(signal.SIGKILL)
            raise AssertionError(f"no 'cluster: node ID joined' line:\n{process.stderr()}")
        assert found.group(2) == self.name, found.group(0)
        assert found.group(3).startswith(self.redis_url), found.group(0)
        node = Node(process, found.group(1), env)
        self.nodes.append(node)
        return node

    def start_nodes(self, count: int, *extra: str, node_timeout: float | None = None) -> list[Node]:
        """``count`` nodes, started side by side (each takes a second of Python start)."""
        with ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(self.start_node, *extra, node_timeout=node_timeout)
                for _ in range(count)
            ]
            return [future.result() for future in futures]

    def stop(self) -> None:
        """Stop every node still running (a paused one is resumed first)."""
        threads = []
        for node in self.nodes:
            if node.alive():
                node.signal(signal.SIGCONT)
                threads.append(threading.Thread(target=_stop_quietly, args=(node,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _stop_quietly(node: Node) -> None:
    try:
        node.process.stop(timeout=15)
    except subprocess.TimeoutExpired:
        pass  # killed by stop(); the test has its own verdict already


# Users of the chat, in either mode, and what each of them receives in its own form.

MSGID = re.compile(r"^\d{16}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNAVAILABLE_LINE = "error: the chat is unavailable: its server cannot reach the cluster's Redis\n"
UNAVAILABLE_BYE = "the chat is unavailable: its server cannot reach the cluster's Redis\n"
MISSED_LINE = "notice: some messages may have been missed while the chat's server was cut off\n"


@dataclass(frozen=True)
class Event:
    """What a text user and a JSON user receive for one thing that happened (None:
    nothing). A JSON ``message`` is compared without its ``time`` and ``msgid``."""

    text: str | None
    json: dict[str, Any] | None


def online(user: User) -> Event:
    return Event(
        f"[{user.addr}]{user.name}:user is online\n",
        {"type": "presence", "name": user.name, "addr": user.addr, "status": "online"},
    )


def offline(user: User) -> Event:
    return Event(
        f"[{user.addr}]{user.name}:user offline\n",
        {"type": "presence", "name": user.name, "addr": user.addr, "status": "offline"},
    )


def said(user: User, text: str) -> Event:
    return Event(
        f"[{user.addr}]{user.name}:{text}\n",
        {
            "type": "message",
            "from": user.name,
            "addr": user.addr,
            "to": None,
            "text": text,
            "account": user.account,
            "room": "#lobby",  # every public message names its room (docs/rooms.md)
        },
    )


def whispered(user: User, to: User, text: str) -> Event:
    return Event(
        f"{user.name} say: {text}\n",
        {
            "type": "message",
            "from": user.name,
            "addr": user.addr,
            "to": to.name,
            "text": text,
            "account": user.account,
        },
    )


def renamed(user: User, old: str, new: str) -> Event:
    return Event(None, {"type": "rename", "old": old, "new": new, "addr": user.addr})


@dataclass
class User:
    """A raw client of one node, in text or JSON mode, with the name it has now."""

    client: LineClient
    mode: str  # "text" or "json"
    name: str
    node: Node
    # Lines read while waiting for a reply, not yet looked at (oldest first).
    pending: list[str] = field(default_factory=list)
    account: str | None = None  # the account it is logged in to

    @property
    def addr(self) -> str:
        return self.client.addr

    async def line(self, timeout: float = TIMEOUT) -> str:
        return self.pending.pop(0) if self.pending else await self.client.line(timeout)

    async def json(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        line = await self.line(timeout)
        assert line.startswith("{"), f"{self.name} expected JSON, got {line!r}"
        value = json.loads(line)
        assert isinstance(value, dict)
        return value

    async def request(self, timeout: float = TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send one JSON request; its reply. Lines that come first are kept for later."""
        fields.setdefault("id", f"r{time.monotonic_ns()}")
        await self.client.send(json.dumps(fields) + "\n")
        with anyio.fail_after(timeout):
            while True:
                line = await self.client.line(timeout)
                if line.startswith("{"):
                    value = json.loads(line)
                    if isinstance(value, dict) and value.get("id") == fields["id"]:
                        return value
                self.pending.append(line)

    async def expect(self, event: Event, timeout: float = TIMEOUT) -> dict[str, Any] | None:
        """Read what ``event`` shows this user and check it; the JSON object read."""
        if self.mode == "text":
            if event.text is not None:
                assert await self.line(timeout) == event.text, f"at {self.name}"
            return None
        if event.json is None:
            return None
        got = await self.json(timeout)
        if got.get("type") == "message":
            assert MSGID.match(got.get("msgid", "")), got
            assert TIME.match(got.get("time", "")), got
            compared = {k: v for k, v in got.items() if k not in ("msgid", "time")}
        else:
            compared = got
        assert compared == event.json, f"at {self.name}"
        return got

    async def silent(self, within: float = 0.5) -> None:
        assert not self.pending, f"{self.name} had {self.pending}"
        if not await self.client.silent(within):
            raise AssertionError(f"{self.name} received an unexpected line")

    async def aclose(self) -> None:
        await self.client.aclose()


async def everyone_expects(users: list[User], event: Event) -> list[dict[str, Any]]:
    """Each of ``users`` receives ``event``; the JSON objects they got."""
    got = [await user.expect(event) for user in users]
    return [value for value in got if value is not None]


async def arrive(node: Node, mode: str, others: list[User], name: str | None = None) -> User:
    """A new user on ``node`` (in ``mode``), whose arrival ``others`` all see; renamed
    to ``name`` if given."""
    client = await LineClient.connect(node.address)
    user = User(client, mode, client.addr, node)
    assert await user.line() == f"[{user.addr}]{user.addr}:user is online\n"
    if mode == "json":
        welcome = await user.request(type="hello", v=1, id="hello")
        assert welcome == {
            "type": "welcome",
            "id": "hello",
            "name": user.addr,
            "addr": user.addr,
            "server": welcome.get("server"),
            "account": None,
            "features": ["history", "accounts", "rooms", "search", "edit", "cluster"],
            "v": 1,
        }
        assert str(welcome["server"]).startswith("imkit/")
    await everyone_expects(others, online(user))
    if name is not None:
        await rename(user, name, others)
    return user


async def rename(user: User, new: str, others: list[User]) -> None:
    """``user`` takes the free name ``new``; JSON users see it (the renamer too)."""
    old = user.name
    if user.mode == "text":
        await user.client.send(f"rename|{new}\n")
        assert await user.line() == f"you have updated user name: {new}\n"
    else:
        reply = await user.request(type="rename", name=new, id="rn")
        assert reply == {"type": "ok", "id": "rn", "name": new}
    user.name = new
    await user.expect(renamed(user, old, new))
    await everyone_expects(others, renamed(user, old, new))


async def refused_name(user: User, new: str) -> None:
    """``user`` asks for ``new``, which someone (anywhere) has."""
    if user.mode == "text":
        await user.client.send(f"rename|{new}\n")
        assert await user.line() == f"{new} has existed...\n"
    else:
        reply = await user.request(type="rename", name=new, id="taken")
        assert reply == {
            "type": "error",
            "id": "taken",
            "code": "name_taken",
            "message": f"the name {new!r} is taken",
        }


async def say(user: User, text: str, everyone: list[User]) -> str | None:
    """``user`` says ``text`` to everyone (``everyone`` includes the sender); the msgid
    JSON users saw (None when all are text users)."""
    ok: dict[str, Any] | None = None
    if user.mode == "text":
        await user.client.send(f"{text}\n")
    else:
        ok = await user.request(type="message", text=text, id="say")
        assert ok == {"type": "ok", "id": "say", "msgid": ok.get("msgid")}
    got = await everyone_expects(everyone, said(user, text))
    msgids = {value["msgid"] for value in got} | ({ok["msgid"]} if ok else set())
    assert len(msgids) <= 1, msgids
    return msgids.pop() if msgids else None


async def tell(user: User, to: User, text: str) -> None:
    """A private message from ``user`` to ``to``; only ``to`` receives it."""
    if user.mode == "text":
        await user.client.send(f"to|{to.name}|{text}\n")
    else:
        ok = await user.request(type="message", to=to.name, text=text, id="tell")
        assert ok == {"type": "ok", "id": "tell", "msgid": ok.get("msgid")}
        assert MSGID.match(ok["msgid"]), ok
    await to.expect(whispered(user, to, text))


async def check_who(user: User, expected: list[User]) -> None:
    """``user`` asks who is online: ``expected``, in this order."""
    if user.mode == "text":
        await user.client.send("who\n")
        got = [await user.line() for _ in expected]
        assert got == [f"[{u.addr}]{u.name}:online...\n" for u in expected], f"at {user.name}"
    else:
        reply = await user.request(type="who", id="who")
        assert reply == {
            "type": "users",
            "id": "who",
            "users": [{"name": u.name, "addr": u.addr, "account": u.account} for u in expected],
        }, f"at {user.name}"


async def expect_all(
    user: User,
    events: list[Event],
    timeout: float = TIMEOUT,
    skip: Callable[[str], bool] | None = None,
) -> None:
    """``user`` receives each of ``events`` (no message events), in any order, and
    nothing else but lines that ``skip`` accepts."""
    if user.mode == "text":
        wanted = sorted(e.text for e in events if e.text is not None)
    else:
        wanted = sorted(json.dumps(e.json, sort_keys=True) for e in events if e.json is not None)
    got: list[str] = []
    with anyio.fail_after(timeout):
        while len(got) < len(wanted):
            line = await user.line(timeout)
            if skip is not None and skip(line):
                continue
            got.append(
                line if user.mode == "text" else json.dumps(json.loads(line), sort_keys=True)
            )
    assert sorted(got) == wanted, f"at {user.name}"


async def drain(user: User, quiet: float = 1.0) -> list[str]:
    """Everything ``user`` receives until nothing comes for ``quiet`` seconds."""
    lines, user.pending = user.pending, []
    while True:
        with anyio.move_on_after(quiet):
            lines.append(await user.client.line(quiet + 60))
            continue
        return lines


async def who_is_there(user: User) -> list[tuple[str, str]]:
    """(name, addr) of each user online, as ``user`` is told (either mode)."""
    if user.mode == "json":
        reply = await user.request(type="who", id="who?")
        assert reply["type"] == "users", reply
        return [(u["name"], u["addr"]) for u in reply["users"]]
    await user.client.send("who\n")
    lines = [await user.line()]  # then the rest of the reply: all that comes at once
    while True:
        with anyio.move_on_after(0.5):
            lines.append(await user.line(60))
            continue
        break
    found = []
    for line in lines:
        match = re.fullmatch(r"\[([^\]]+)\](.*):online\.\.\.\n", line)
        assert match, line
        found.append((match.group(2), match.group(1)))
    return found


NUMBERED_LINE = re.compile(r"^\[[^\]]+\](\S+):n (\d+)\n$")


async def record_numbered(user: User, count: int, into: list[tuple[str, int]]) -> None:
    """Read ``count`` numbered public messages ("n K") as (sender, K); the ``ok``
    replies of a JSON sender are left to be read after; any other line fails."""
    kept: list[str] = []
    with anyio.fail_after(90):
        while len(into) < count:
            line = await user.line(timeout=90)
            if user.mode == "text":
                found = NUMBERED_LINE.match(line)
                assert found, f"{user.name}: {line!r}"
                into.append((found.group(1), int(found.group(2))))
            else:
                event = json.loads(line)
                if event["type"] == "ok":
                    kept.append(line)
                    continue
                assert event["type"] == "message", f"{user.name}: {event}"
                into.append((event["from"], int(event["text"].removeprefix("n "))))
    user.pending = kept + user.pending  # in the order received


def healthz(address: str) -> tuple[int, dict[str, Any]]:
    """GET http://ADDRESS/healthz (``--metrics ADDRESS``): status and JSON body."""
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=TIMEOUT) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def cluster_metrics(address: str) -> dict[str, float]:
    """The imkit_cluster_* samples of GET http://ADDRESS/metrics, by name."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("imkit_cluster_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def admin(node: Node, **request: Any) -> dict[str, Any]:
    """One request to ``node``'s admin socket, as `imkit account` sends it; its reply
    (JSON, to check every field)."""
    path = node.env["XDG_RUNTIME_DIR"] + f"/imkit/admin-{node.port}.sock"
    stream = await anyio.connect_unix(path)
    async with stream:
        await stream.send(json.dumps(request).encode() + b"\n")
        data = b""
        with anyio.fail_after(TIMEOUT):
            while not data.endswith(b"\n"):
                data += await stream.receive()
    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


async def add_account(node: Node, name: str, password: str = "pw-" + "x" * 8) -> str | None:
    """Add the account ``name`` through ``node``; the new name of the guest who had it."""
    reply = await admin(node, type="account_add", name=name, password=password)
    assert reply["type"] == "ok" and reply["name"] == name, reply
    renamed_to: str | None = reply["renamed"]
    return renamed_to


PASSWORD = "pw-" + "x" * 8


async def log_in(user: User, account: str, others: list[User], password: str = PASSWORD) -> None:
    """``user`` logs in to ``account`` (and takes its name: JSON users see the rename,
    the user itself first, before its reply)."""
    old = user.name
    if user.mode == "text":
        await user.client.send(f"login|{account}|{password}\n")
        assert await user.line() == f"you have logged in as {account}\n"
    else:
        reply = await user.request(type="login", name=account, password=password, id="login")
        assert reply == {"type": "ok", "id": "login", "name": account, "account": account}
    user.name, user.account = account, account
    if old != account:
        await user.expect(renamed(user, old, account))
        await everyone_expects(others, renamed(user, old, account))
    assert not user.pending, user.pending


# A dead node is noticed within --node-timeout plus two heartbeats (node_timeout / 5
# each); the rest is room for two shared, noisy cores.
SLACK = 6.0
