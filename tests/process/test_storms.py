"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.

Here the tests that run imkit subprocesses; the others are in server/test_storms.py,
slow/test_storms.py, unit/test_storms.py."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time

from tests.support import (
    split_addr,
    start_server_process,
)

# ------------------------------------------------------------------------- bursts


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
