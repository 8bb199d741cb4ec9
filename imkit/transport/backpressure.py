"""Backpressure: readers wait while a client that keeps up is behind.

A flood of lines read in one go (a client writing 100,000 lines at once, or eight
clients each sending a burst of 4 KB lines) can be fanned out far faster than any
socket drains. Without a brake, every reader's queue would fill before the flusher had
written a byte, and clients that read continuously would be dropped as slow consumers.

So, when an outbox passes its high-water mark (half of ``--max-queue``) it is
*congested*, and every reader waits before handling its next line, until each
congested outbox has drained below its low-water mark (a quarter): meanwhile the
readers read nothing, and TCP's flow control pushes back on the senders. A client that
keeps reading drains its queue and the chat goes on at its pace.

A client that does not (it stopped reading, or reads too slowly) must not hold everyone
up: an outbox still congested ``CONGESTION_TIMEOUT`` seconds after it passed the mark is
not waited for again during its connection; its queue fills to ``--max-queue`` and the
hub drops it as a slow consumer, as before. The price of one stalled reader is one such
pause, once.

A cluster node also holds its readers back while the cluster's slowest reader is far
behind in Redis' event stream (:meth:`Congestion.hold`, imkit.cluster.pace): the same
wait, for a reason outside this process, ended by :meth:`Congestion.release`.
"""

from __future__ import annotations

import math
import time

import anyio

from imkit.hub.outbox import Outbox

# How long readers wait for one congested client to drain half its queue: a client
# reading continuously on any working network takes half a MiB in well under that.
CONGESTION_TIMEOUT = 2.0


class Congestion:
    """The congested outboxes, and the readers' wait for them; see the module docstring."""

    def __init__(self, timeout: float = CONGESTION_TIMEOUT) -> None:
        self.timeout = timeout
        # Congested outbox -> when it passed its high-water mark (monotonic). Readers
        # test its truth before every line, so it is a plain dict.
        self.outboxes: dict[Outbox, float] = {}
        self._cleared = anyio.Event()
        self.pauses = 0  # times a reader waited: counted in stats
        self.given_up = 0  # clients no longer waited for
        # Stands in self.outboxes while held (never overdue): readers test one dict.
        self._held = Outbox(0)

    def hold(self) -> None:
        """Readers wait from their next line on, however long, until :meth:`release`."""
        self.outboxes[self._held] = math.inf

    def release(self) -> None:
        self._forget(self._held)

    def add(self, outbox: Outbox) -> None:
        """``outbox`` passed its high-water mark (its ``on_congested`` callback)."""
        self.outboxes[outbox] = time.monotonic()

    def relieve(self, outbox: Outbox) -> None:
        """``outbox`` drained below its low-water mark, or closed."""
        outbox.relieve()
        self._forget(outbox)

    def _forget(self, outbox: Outbox) -> None:
        if self.outboxes.pop(outbox, None) is not None and not self.outboxes:
            self._cleared.set()
            self._cleared = anyio.Event()

    async def wait(self) -> None:
        """Return when no outbox is congested, giving up on those congested too long."""
        self.pauses += 1
        while self.outboxes:
            now = time.monotonic()
            overdue = [o for o, since in self.outboxes.items() if now - since >= self.timeout]
            for outbox in overdue:
                outbox.relieve(rearm=False)  # from now on only --max-queue applies to it
                self.given_up += 1
                self._forget(outbox)
            if not self.outboxes:
                return
            remaining = min(self.outboxes.values()) + self.timeout - now
            with anyio.move_on_after(remaining):
                await self._cleared.wait()
