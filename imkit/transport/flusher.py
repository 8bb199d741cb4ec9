"""The flusher: one flush round per round of the event loop, for the whole server.

The hub queues bytes into a connection's outbox, which tells the flusher it is ready
(:meth:`Flusher.schedule`). Once per scheduling round, after every reader that woke in
that round has been handled, the flusher announces the round's joins
(:meth:`~imkit.hub.Hub.announce_joins`) and writes each ready outbox with one
non-blocking ``send`` of everything queued: lines that arrive together leave together,
and a broadcast to N users costs N syscalls and no task switch (large flushes are
shared with the :class:`~imkit.transport.writes.WriteThread`). What the kernel refuses
is left to the connection's writer task; the flusher never writes to a connection
whose writer is busy, so order is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import anyio

from imkit.hub.core import Hub
from imkit.transport.writes import PARALLEL_FLUSH_MIN, Flushable, WriteThread

log = logging.getLogger("imkit.server")


class Flusher:
    """Flush rounds: :meth:`run` is the server's background task for them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.write_thread: WriteThread | None = None  # set by the server while it serves
        # --metrics: told the delivery latency once a round (docs/metrics.md)
        self.observe_delivery: Callable[[float], None] | None = None
        self._queue: list[Flushable] = []
        self._pending = False  # a round is asked for and has not started
        self._wanted = anyio.Event()
        self._wake: Callable[[], object] = self._set_wanted  # see run()
        hub.on_unannounced = self.want_round  # its held joins go out in the next round

    def schedule(self, connection: Flushable) -> None:
        """``connection``'s outbox has become ready: write it in the next round."""
        self._queue.append(connection)
        self.want_round()

    def want_round(self) -> None:
        if not self._pending:
            self._pending = True
            self._wake()

    async def run(self) -> None:
        """Run a flush round at the end of each round of the event loop that asked for
        one. On asyncio the round is a loop callback (``call_soon``): it comes after
        every reader woken in the same round, like a task would, without a task switch
        and a new Event per round; elsewhere it is this task, woken by an Event."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - CI tests the asyncio backend only
            loop = None
        if loop is not None:
            self._wake = partial(loop.call_soon, self._round)
            if self._pending:  # asked for before this task started
                loop.call_soon(self._round)
            await anyio.sleep_forever()
        while True:  # pragma: no cover - not asyncio
            await self._wanted.wait()
            self._wanted = anyio.Event()
            self._round()

    def _set_wanted(self) -> None:  # pragma: no cover - not asyncio
        self._wanted.set()

    def _round(self) -> None:
        try:
            self._flush()
        except Exception:  # pragma: no cover - only a bug
            # As a loop callback a bug would only be printed by asyncio, and the round's
            # flag left set would stop every later round: log it, keep flushing.
            self._pending = False
            log.exception("a flush round failed", extra={"event": "flush_failed"})

    def _flush(self) -> None:
        hub, stats = self.hub, self.hub.stats
        hub.announce_joins()  # the round's joins, in one put per user
        self._pending = False  # after: the joins' outboxes join this round, not another
        ready, self._queue = self._queue, []
        # The delivery latency, once a round (docs/metrics.md): from the first chat
        # message handled since the last round to the end of this round's sends,
        # if they sent anything.
        since, hub.unflushed_since = hub.unflushed_since, None
        sent = stats.bytes_out
        if self.write_thread is not None and len(ready) >= PARALLEL_FLUSH_MIN:
            self.write_thread.flush(ready)
        else:
            for connection in ready:
                try:
                    connection.flush_nowait()
                except Exception:  # pragma: no cover - only a bug: that client ends
                    log.exception("a flush failed", extra={"event": "flush_failed"})
                    connection.flushed(b"", OSError("the flush failed"))
        observe = self.observe_delivery
        if since is not None and observe is not None and stats.bytes_out != sent:
            observe(time.monotonic() - since)
