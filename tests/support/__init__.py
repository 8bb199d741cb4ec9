"""Test helpers: raw line clients over real sockets, and `imkit` subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from imkit.hub.core import Hub
from imkit.operator import answers
from imkit.server import Server, ServerConfig

# Generous: these machines have 2 shared cores and are noisy.
TIMEOUT = 10.0
IMKIT = [sys.executable, "-m", "imkit"]


class Clock:
    """A wall clock that moves only when the test moves it (``clock.now += 60``)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:  # 2027-01-15T08:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


# Clients still open when a test's server stops are closed first, so that the server
# sees EOF at once instead of lingering for the client's reply to its FIN.
OPEN_CLIENTS: set[LineClient] = set()


class LineClient:
    """A raw TCP client: writes bytes exactly as given, reads lines."""

    def __init__(self, stream: SocketStream) -> None:
        OPEN_CLIENTS.add(self)
        self.loop = asyncio.get_running_loop()  # the tests run on asyncio (conftest.py)
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)
        local = stream.extra(SocketAttribute.local_address)
        assert isinstance(local, tuple), local  # TCP: (host, port), never a Unix path
        host, port = local[:2]
        self.addr = f"{host}:{port}"  # what the server calls us

    @classmethod
    async def connect(cls, address: str) -> LineClient:
        host, port = split_addr(address)
        return cls(await anyio.connect_tcp(host, port))

    async def send(self, data: bytes | str) -> None:
        await self.stream.send(data.encode() if isinstance(data, str) else data)

    async def line(self, timeout: float = TIMEOUT) -> str:
        with anyio.fail_after(timeout):
            raw = await self.reader.receive_until(b"\n", 1 << 20)
        return raw.decode() + "\n"  # receive_until strips the newline it found

    async def lines(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        return [await self.line(timeout) for _ in range(count)]

    async def line_matching(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Skip lines until one matches ``pattern`` (re.search)."""
        with anyio.fail_after(timeout):
            while True:
                line = await self.line()
                if re.search(pattern, line):
                    return line

    async def json(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next JSON object line, skipping text lines (as the protocol allows)."""
        with anyio.fail_after(timeout):
            while True:
                line = await self.line()
                if line.startswith("{"):
                    value = json.loads(line)
                    assert isinstance(value, dict)
                    return value

    async def json_of_type(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            while True:
                value = await self.json()
                if value["type"] == kind:
                    return value

    async def request(self, **fields: Any) -> dict[str, Any]:
        """Send one JSON request and return the reply carrying its id."""
        fields.setdefault("id", f"r{time.monotonic_ns()}")
        await self.send(json.dumps(fields) + "\n")
        with anyio.fail_after(TIMEOUT):
            while True:
                value = await self.json()
                if value.get("id") == fields["id"]:
                    return value

    async def silent(self, within: float = 0.3) -> bool:
        """True if nothing arrives within ``within`` seconds."""
        with anyio.move_on_after(within):
            await self.line(timeout=within + 1)
            return False
        return True

    async def eof(self, timeout: float = TIMEOUT) -> bool:
        """Read until the server closes; True at a clean EOF or reset."""
        with anyio.fail_after(timeout):
            try:
                while await self.stream.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return True
        return True

    async def drain(self) -> None:
        """Read and discard everything until EOF (run it in a task)."""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            while True:
                await self.reader.receive()

    async def aclose(self) -> None:
        OPEN_CLIENTS.discard(self)
        await self.stream.aclose()


async def close_open_clients() -> None:
    """Close the clients still open, so that the server sees EOF at once. Those left by
    an earlier test whose event loop has ended (a test of its own server process, say)
    are only forgotten: their loop, which alone could close them, is gone."""
    loop = asyncio.get_running_loop()
    for client in list(OPEN_CLIENTS):
        if client.loop is loop:
            await client.aclose()
        else:
            OPEN_CLIENTS.discard(client)


async def joined(address: str, name: str | None = None) -> LineClient:
    """A text client whose own join line has been read (and renamed to ``name``)."""
    client = await LineClient.connect(address)
    assert await client.line() == f"[{client.addr}]{client.addr}:user is online\n"
    if name is not None:
        await client.send(f"rename|{name}\n")
        assert await client.line() == f"you have updated user name: {name}\n"
    return client


@dataclass
class ServerProcess:
    """A running ``imkit serve``; its stderr is read continuously into ``log``."""

    proc: subprocess.Popen[str]
    address: str
    log: list[str]

    def __post_init__(self) -> None:
        # Drain stderr so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stderr(self) -> str:
        return "".join(self.log)


def imkit_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMKIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_imkit(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``imkit ARGS`` to the end, as a script would; output captured as text."""
    return subprocess.run(
        [*IMKIT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env=env or imkit_env(),
    )


def start_server_process(
    *args: str, env: dict[str, str] | None = None, port: int = 0
) -> ServerProcess:
    """Start ``imkit serve --port PORT ARGS`` (a free port unless given) and wait for the
    address it logs. Every test that runs ``imkit serve`` in the background starts it here."""
    proc = subprocess.Popen(
        [*IMKIT, "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env or imkit_env(),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"listening on (\S+?)(,|$|\s)", line)
        if found:
            return ServerProcess(proc, found.group(1), seen)
    proc.kill()
    raise AssertionError("imkit serve did not start:\n" + "".join(seen))


class InteractiveProcess:
    """A subprocess fed line by line on stdin, its stdout read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env or imkit_env(),
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Skip output lines until one matches ``pattern`` (re.search)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"EOF before {pattern!r}; saw {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        """Close stdin, wait for the exit; returns (status, stderr)."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        status = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        return status, self.proc.stderr.read()

    def finish_after_exit(self, timeout: float = 20) -> tuple[int, str]:
        """Wait for the process to exit on its own, stdin still open."""
        status = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        return status, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def hostport(server: Server) -> tuple[str, int]:
    return split_addr(server.addresses[0])


async def client_from(address: str, source: str) -> LineClient:
    """A text client connecting from the loopback address ``source``."""
    host, port = split_addr(address)
    client = LineClient(await anyio.connect_tcp(host, port, local_host=source))
    assert (await client.line()).endswith(":user is online\n")
    return client


async def json_client(address: str, name: str | None = None) -> LineClient:
    client = await LineClient.connect(address)
    hello: dict[str, Any] = {"type": "hello", "id": "hello"}
    if name is not None:
        hello["name"] = name
    assert (await client.request(**hello))["type"] == "welcome"
    return client


async def all_history(client: LineClient) -> list[dict[str, Any]]:
    """Every public message kept, oldest first, paged as a client would."""
    messages: list[dict[str, Any]] = []
    before = None
    while True:
        request: dict[str, Any] = {"type": "history", "limit": 100}
        if before is not None:
            request["before"] = before
        page = await client.request(**request)
        assert page["type"] == "history", page
        messages[:0] = page["messages"]
        if not page["more"]:
            return messages
        before = page["messages"][0]["msgid"]


async def ask(server: Server, **request: Any) -> dict[str, Any]:
    return await answers.answer(server, json.dumps(request).encode(), by="uid 1000")


class run_server:  # noqa: N801 - used like a function: `async with run_server(config)`
    """Run a Server in a task group for the duration of the block."""

    def __init__(self, config: ServerConfig, hub: Hub | None = None) -> None:
        self.server = Server(config, hub)

    async def __aenter__(self) -> Server:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.server.serve)
        return self.server

    async def __aexit__(self, *exc: object) -> bool | None:
        await close_open_clients()
        self.server.stop()
        return await self._tg.__aexit__(*exc)  # type: ignore[arg-type]


def chat(address: str, *args: str) -> InteractiveProcess:
    host, port = split_addr(address)
    return InteractiveProcess([*IMKIT, "chat", "--host", host, "--port", str(port), *args])


async def say(client: LineClient, *lines: str) -> None:
    for line in lines:
        await client.send(line + "\n")
        await client.line_matching(f":{line}$")  # its own echo: delivered (and queued)


async def proxied(address: str, source: str, port: int = 40000) -> LineClient:
    """A client behind a balancer (--proxy-protocol) whose user is at ``source``."""
    client = await LineClient.connect(address)
    await client.send(f"PROXY TCP6 {source} 2001:db8::ffff {port} 8888\r\n".encode())
    return client


def half_closed(address: str, lines: bytes) -> tuple[str, list[str]]:
    """Send ``lines``, end our writing side, read to the server's EOF: our address and
    the lines received (an AssertionError if the server never ends the connection)."""
    sock = socket.create_connection(split_addr(address), timeout=TIMEOUT)
    host, port = sock.getsockname()[:2]
    try:
        sock.sendall(lines)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    return f"{host}:{port}", data.decode().splitlines()
