"""The write thread: a second thread for the flusher's ``send()`` calls.

``send()`` releases the GIL, so on a machine with more than one core two threads can be
inside it at once. What it gains on broadcasts is measured in docs/performance.md.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
from collections.abc import Sequence
from typing import Protocol

from imkit.transport.links import Link, SocketLink

log = logging.getLogger("imkit.server")

# A flush of at least this many connections is shared with the WriteThread; below it,
# waking the thread (tens of microseconds) costs about what the sends it would take over
# save (measured: at 32, 50 private pairs ran ~4 % slower with the thread than without).
PARALLEL_FLUSH_MIN = 64
# ... and it is shared this many connections at a time (see WriteThread.flush).
SHARED_FLUSH_BATCH = 1024


class Flushable(Protocol):
    """What the flusher needs of a connection (imkit.transport.connection.Connection)."""

    @property
    def link(self) -> Link: ...

    def flush_nowait(self) -> None: ...

    def take_for_flush(self) -> bytes: ...

    def flushed(self, data: bytes, sent: int | OSError) -> None: ...


class _WriteJob:
    """One flush's sends, shared by the flusher and the write thread: each takes the next
    write nobody has taken yet, so the work splits itself by how fast each side runs."""

    __slots__ = ("writes", "results", "_next", "_claim", "_done")

    def __init__(self, writes: list[tuple[socket.socket, bytes]]) -> None:
        self.writes = writes
        self.results: list[int | OSError | None] = [None] * len(writes)
        self._next = itertools.count()  # next() on it is atomic under the GIL
        # Taken by the thread as it starts or by the flusher once all is sent, whichever
        # comes first: it decides whether the thread takes part (and must be waited for).
        self._claim = threading.Lock()
        self._done = threading.Event()

    def _work(self) -> None:
        writes, results, count = self.writes, self.results, len(self.writes)
        for index in self._next:
            if index >= count:
                return
            sock, data = writes[index]
            try:
                results[index] = sock.send(data)
            except BlockingIOError:
                results[index] = 0
            except OSError as error:
                results[index] = error

    def help(self) -> None:
        """The write thread's part; nothing if the flusher has finished alone."""
        if self._claim.acquire(blocking=False):
            try:
                self._work()
            finally:
                self._done.set()  # whatever happens, the flusher must not wait forever

    def run(self) -> None:
        """The flusher's part: send until nothing is left, then wait for the thread's
        last send, unless the thread never started (then it never will)."""
        self._work()
        if not self._claim.acquire(blocking=False):
            self._done.wait()


class WriteThread:
    """A second thread for the flusher's ``send()`` calls.

    For a large batch the flusher takes every connection's bytes, offers the sends to
    this thread and works through them itself at the same time, then waits for the
    thread's last one. While it waits the event loop runs nothing else, so no other code
    touches those sockets meanwhile, and every connection's bytes still leave in order.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="imkit-writes", daemon=True).start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.help()
            except Exception:  # pragma: no cover - only a bug: log it, the flusher sends alone
                log.exception("the write thread failed", extra={"event": "write_thread_failed"})

    def close(self) -> None:
        self._jobs.put(None)

    def flush(self, ready: Sequence[Flushable]) -> None:
        # In batches, so that only one batch's bytes are out of the outboxes at a time:
        # all at once, 5,000 users joining 50 at a time left the server holding 20.5
        # instead of 16.6 KiB per connection (freed, but not given back to the system).
        batch = SHARED_FLUSH_BATCH
        for start in range(0, len(ready), batch):
            self._flush_batch(ready[start : start + batch])

    def _flush_batch(self, ready: Sequence[Flushable]) -> None:
        handed: list[tuple[Flushable, bytes]] = []
        writes: list[tuple[socket.socket, bytes]] = []
        for connection in ready:
            link = connection.link
            if not isinstance(link, SocketLink):  # TLS: only its writer task writes
                connection.flush_nowait()
            elif data := connection.take_for_flush():
                handed.append((connection, data))
                writes.append((link.sock, data))
        job = _WriteJob(writes)
        self._jobs.put(job)
        job.run()
        for (connection, data), sent in zip(handed, job.results, strict=True):
            # None only if the thread itself failed mid-send: treat it as a broken
            # socket (that connection ends) rather than lose track of the bytes.
            connection.flushed(data, OSError("the write thread failed") if sent is None else sent)


def use_write_thread() -> bool:
    """A second writing thread only pays off with a second core to run it on."""
    return len(os.sched_getaffinity(0)) > 1
