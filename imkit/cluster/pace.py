"""A node paces its users to the cluster's slowest reader: the backpressure of one
server (imkit.transport.backpressure), across the cluster.

Every public event is appended to ``P:log``, which keeps the last LOG_LENGTH entries;
every node's reader must read them all. On one node a burst is held back by the
clients' TCP as soon as an outbox is congested; in a cluster the writers are other
processes, and without a brake they outran the readers by more than the stream within
a second (20,000 messages from 400 clients: readers lost a third).

So each reader reports its place in ``P:log`` (the READ_MARK script, at most every
MARK_INTERVAL, in the round trip of its XREAD), Redis keeps the place of the slowest
reader that is waited for (one whose node beats), and every publish tells its node how
far that reader is behind the entry it wrote (a node that has not beaten for three
beat intervals is not waited for). Past HIGH entries the node *holds*: its
users' readers wait before their next line (TCP holds the senders back, nothing is
dropped), and its writer sends nothing more to Redis until the reader is back within
LOW, or for at most HOLD_MAX at a time. The writer sends at most WRITE_CHUNK commands
per round trip, so what the nodes send before they learn of the lag stays within the
other half of the stream.
"""

from __future__ import annotations

import anyio

from imkit.cluster.scripts import LOG_LENGTH
from imkit.transport.backpressure import Congestion

# Hold the users back once the slowest reader is this many entries behind: half the
# stream, the other half for what the nodes send before they know.
HIGH = LOG_LENGTH // 2
# Let them go on once it is this close again, like an outbox's low-water mark.
LOW = LOG_LENGTH // 4
# The most commands the writer sends in one round trip (five BATCH calls): after each,
# the publishes' replies say how far behind the slowest reader is. Two nodes sending
# a chunk each past HIGH still stay within the stream.
WRITE_CHUNK = 1000
# The writer waits at most this long at a time (like CONGESTION_TIMEOUT) before it
# sends one more chunk: the heartbeat's beat goes ahead of the users' commands
# (ClusterLink.call's first), so it is late by at most this, not by this for every
# chunk queued before it.
HOLD_MAX = 2.0
# A reader reports its place at most this often (one script in Redis per report)...
MARK_INTERVAL = 0.05
# ... and, while its node holds, waits at most this long in XREAD, so that it learns
# soon that it may go on.
POLL_MS = 50


class Pacer:
    """Whether this node holds its users back; see the module docstring."""

    def __init__(self) -> None:
        self.behind = 0  # the slowest reader's lag, as last heard
        self.holding = False
        self.holds = 0  # times this node held its users back
        self.congestion: Congestion | None = None  # the readers' (the server attaches it)
        self._released = anyio.Event()

    def attach(self, congestion: Congestion) -> None:
        """The transport's readers, to hold back with the writer."""
        self.congestion = congestion
        if self.holding:
            congestion.hold()

    def note(self, behind: int) -> None:
        """The slowest reader is ``behind`` entries behind the last one written."""
        self.behind = behind
        if behind >= HIGH and not self.holding:
            self.holding = True
            self.holds += 1
            if self.congestion is not None:
                self.congestion.hold()
        elif behind <= LOW and self.holding:
            self.holding = False
            if self.congestion is not None:
                self.congestion.release()
            self._released.set()
            self._released = anyio.Event()

    async def wait(self) -> None:
        """While holding: until released, at most HOLD_MAX."""
        if self.holding:
            with anyio.move_on_after(HOLD_MAX):
                await self._released.wait()
