"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.

Here the tests that take minutes; the others are in process/test_storms.py,
server/test_storms.py, unit/test_storms.py."""

from __future__ import annotations

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

import pytest

from tests.support import (
    run_imkit,
    split_addr,
    start_server_process,
)

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


# ------------------------------------------------------------------------- bursts


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
