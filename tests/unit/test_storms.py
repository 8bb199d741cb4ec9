"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.rules.names import name_problem
from tests.support import (
    split_addr,
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


# ------------------------------------------------------------------------- bursts


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
