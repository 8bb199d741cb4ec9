"""Stopping a server in a storm of resets: raw sockets that keep it busy, and how long
it may take to exit."""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support import ServerProcess, split_addr

# A reset storm: this many threads connecting and resetting (SO_LINGER 0) as fast as
# they can, for at most STORM_SECONDS and STORM_CONNECTIONS connections in all. Far
# longer than the few seconds a shutdown may take, so that a shutdown that waits for the
# storm to end shows as one (before the fix it did, to the second).
STORM_THREADS = 8


STORM_SECONDS = 15.0


STORM_CONNECTIONS = 150_000


# What "exit within a few seconds" is held to: a JSON client that does not close gets
# its bye and then 2 s (LINGER_TIMEOUT) to close; the rest is margin for 2 shared cores.
EXIT_WITHIN = 6.0


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def reset_storm(*addresses: str) -> Iterator[list[int]]:
    """Connect and reset at once to ``addresses`` in turn from STORM_THREADS threads for
    the duration of the block (at most STORM_SECONDS); yields a one-item list holding
    the connections made so far."""
    targets = [split_addr(address) for address in addresses]
    made = [0]
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + STORM_SECONDS

    def hammer(turn: int) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if made[0] >= STORM_CONNECTIONS:
                    return
            turn += 1
            try:
                sock = socket.create_connection(targets[turn % len(targets)], timeout=2)
            except OSError:  # refused: the node stopped accepting
                time.sleep(0.01)
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            with lock:
                made[0] += 1

    threads = [
        threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(STORM_THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        stop.set()
        for thread in threads:
            thread.join(STORM_SECONDS + 5)


def json_socket(address: str) -> socket.socket:
    """A JSON client, welcomed."""
    sock = socket.create_connection(split_addr(address))
    sock.sendall(b'{"type":"hello","name":"bot"}\n')
    read_until(sock, b'"welcome"')
    return sock


def wait_for_storm(made: list[int], count: int = 1000) -> None:
    deadline = time.monotonic() + 10
    while made[0] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert made[0] >= count, f"no storm: {made[0]} connections"


def stop_in_a_storm(server: ServerProcess, bot: socket.socket, signum: int) -> None:
    """Signal ``server`` (already in a storm): ``bot`` gets its bye at once and the
    process exits 0 within EXIT_WITHIN, however long the storm goes on."""
    started = time.monotonic()
    server.proc.send_signal(signum)
    bye = read_until(bot, b'"bye"', timeout=EXIT_WITHIN).splitlines()[-1]
    assert json.loads(bye)["reason"] == "shutdown"
    bye_after = time.monotonic() - started
    assert bye_after < 3, f"bye {bye_after:.1f}s after the signal"
    bot.close()
    assert server.proc.wait(STORM_SECONDS + 10) == 0
    exit_after = time.monotonic() - started
    # Before the fix: the storm's end, 13 s or more after the signal.
    assert exit_after < EXIT_WITHIN, f"exited {exit_after:.1f}s after the signal"
    log = server.stderr()
    assert f"received {signal.Signals(signum).name}" in log
    assert "Traceback" not in log
