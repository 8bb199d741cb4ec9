"""The node's reader: the chat's event stream and the node's own, merged in one order.

The reader (``imkit-reader-NODE``) waits in ``XREAD BLOCK`` on ``P:log`` and
``P:node:ID:log`` and hands each event to the hub in sequence order across both
streams. A stream resumes from the last id read, so a dropped connection loses nothing
(PUB/SUB would: redis-py resubscribes silently, #3979).

Redis 7.0 answers a blocking XREAD on two streams with only the stream that became
ready first, even when the other got entries in the same script. So the blocking XREAD
only wakes the reader (``COUNT 1``); a second, non-blocking XREAD from the same
positions, sent in the same round trip and run by Redis right after the first returns,
reads both streams as they are at one moment. Every event numbered below one it
returns was written before that moment and so is in it too: a sender's private
message can no longer be applied before its earlier public one.

Rooms (docs/cluster.md, "Rooms"): the reader reads the event stream of each room that
this node's users are in, and only those: :meth:`EventReader.add_stream` and
:meth:`EventReader.drop_stream` change the set. A stream added while an XREAD is in
flight would wait for that XREAD to time out (up to READ_BLOCK_MS) before it is read;
cancelling the XREAD would lose the connection's place in its replies (it must then be
closed, as :meth:`~EventReader.restart` does). So the writer sends ``CLIENT UNBLOCK``
with the reader's connection id: Redis ends the blocking XREAD as if it had timed out,
the non-blocking XREAD of the same round still runs, nothing in flight is lost, and the
next round reads the new stream from the id it was added with (the room's join event:
the joiner's own, which its reply answered). An UNBLOCK that arrives before the XREAD
blocks is tried again while that round lasts. Entries of a stream that was dropped, or
that are not after the place a stream was (re-)added at, are skipped when a reply
brings them, so a stream dropped and added back in flight delivers each event once.
An event whose ``p`` is ``0-0`` begins its stream (a room made again after it ended):
no gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
from redis.exceptions import NoScriptError, ResponseError

from imkit.cluster import scripts
from imkit.cluster.connection import COMMAND_TIMEOUT, FAILURES, FIRST_RETRY, RedisConnection, reason
from imkit.cluster.pace import MARK_INTERVAL, POLL_MS

if TYPE_CHECKING:
    from imkit.cluster.link import ClusterLink, Events

log = logging.getLogger("imkit.cluster")

# The reader's XREAD blocks at most this long, so that a dead connection is noticed.
READ_BLOCK_MS = 1000
READ_BATCH = 1000


class EventReader:
    """This node's reading of the event streams; see the module docstring."""

    def __init__(self, link: ClusterLink) -> None:
        self.link = link
        # Stream -> the last id read from it.
        self.read_from = {link.log_key: "0-0", link.own_log_key: "0-0"}
        self.epoch = ""  # the epoch of the data read (P:meta epoch)
        self._reset = False
        self._scope: anyio.CancelScope | None = None
        # Stream -> the id its next entry may follow instead of the last one read:
        # Redis' top when it came back behind this node (_resume).
        self._rejoined: dict[str, str] = {}
        self._marked = 0.0  # when it last reported its place (monotonic)
        self.client_id: int | None = None  # the reader's Redis connection (CLIENT ID)
        self._in_flight: frozenset[str] | None = None  # the streams of the XREAD waiting
        self._wake_tries = 0

    def add_stream(self, stream: str, after_id: str) -> None:
        """Read ``stream`` too, from the entry after ``after_id`` (see the module
        docstring: the XREAD in flight is woken, not cancelled)."""
        self.read_from[stream] = after_id
        self._rejoined.pop(stream, None)
        if self._in_flight is not None and stream not in self._in_flight:
            self._wake_tries = 0
            self._wake()

    def drop_stream(self, stream: str) -> None:
        """Stop reading ``stream`` (what a reply in flight brings of it is skipped)."""
        self.read_from.pop(stream, None)
        self._rejoined.pop(stream, None)

    def reads(self, stream: str) -> bool:
        return stream in self.read_from

    def _wake(self) -> None:
        if self.client_id is not None:
            self.link.call(("CLIENT", "UNBLOCK", self.client_id), self._woken)

    def _woken(self, reply: Any) -> None:
        """CLIENT UNBLOCK's answer: 0 when the XREAD was not blocking yet (or over)."""
        flight = self._in_flight
        if reply != 0 or flight is None or all(s in flight for s in self.read_from):
            return
        self._wake_tries += 1
        if self._wake_tries <= 100:  # that round's XREAD blocks at most READ_BLOCK_MS
            asyncio.get_running_loop().call_later(0.01, self._wake)

    def start_at(self, last: str, epoch: str) -> None:
        """The node joined: read ``P:log`` from ``last`` on (its own stream is new)."""
        self.read_from[self.link.log_key] = last
        self.epoch = epoch

    def restart(self) -> None:
        """Redis' data changed (registered again): resume anew (:meth:`_resume`)."""
        self._reset = True
        if self._scope is not None:
            self._scope.cancel()

    def _commands(self) -> list[tuple[Any, ...]]:
        """This round: its place in P:log for the pace (.pace: at most every
        MARK_INTERVAL, or while the node holds), the XREAD that waits, the XREAD that
        reads."""
        link, pacer = self.link, self.link.pacer
        commands: list[tuple[Any, ...]] = []
        now = time.monotonic()
        if pacer.holding or now - self._marked >= MARK_INTERVAL:
            self._marked = now
            place = count(self.read_from[link.log_key])
            # A node whose beat is older than three intervals (two missed, or one late
            # by a writer held for HOLD_MAX) is not waited for.
            stale_ms = int(link.beat_interval * 3000)
            mark = link.script_call("read_mark", link.node, place, stale_ms)
            commands.append(mark)
        self._in_flight = frozenset(self.read_from)
        streams = (*self.read_from.keys(), *self.read_from.values())
        block = POLL_MS if pacer.holding else READ_BLOCK_MS
        commands.append(("XREAD", "COUNT", 1, "BLOCK", block, "STREAMS", *streams))
        commands.append(("XREAD", "COUNT", READ_BATCH, "STREAMS", *streams))
        return commands

    async def run(self) -> None:
        link = self.link
        events = link.events
        assert events is not None
        retry = FIRST_RETRY
        while True:
            reader = link._connection("reader", COMMAND_TIMEOUT + READ_BLOCK_MS / 1000)
            try:
                await self._resume(reader, events)
                while not self._reset:
                    replies = None
                    with anyio.CancelScope() as self._scope:
                        replies = await reader.run(self._commands())
                    self._scope = self._in_flight = None
                    if replies is None:  # restart() cancelled the read
                        continue
                    if len(replies) == 3:
                        await self._marked_at(reader, replies.pop(0))
                    for reply in replies:
                        if isinstance(reply, ResponseError):
                            raise reply
                    if replies[1]:
                        self._deliver(replies[1], events)
                    retry = FIRST_RETRY
            except FAILURES as error:
                # Nobody can tell how far behind the readers are: let the users' lines
                # be read (they are answered `unavailable` if Redis is unreachable).
                link.pacer.note(0)
                log.debug(
                    "cluster: reader: %s",
                    reason(error),
                    extra={"event": "cluster_reader_error", "reason": reason(error)},
                )
                await anyio.sleep(retry)
                retry = min(retry * 2, link.beat_interval)
            finally:
                self._scope = self._in_flight = None
                self.client_id = None
                with anyio.CancelScope(shield=True):
                    await reader.close()

    async def _marked_at(self, reader: RedisConnection, reply: Any) -> None:
        if isinstance(reply, NoScriptError):  # Redis restarted: the writer loads them too
            await reader.run([("SCRIPT", "LOAD", scripts.ALL["read_mark"])])
        elif isinstance(reply, ResponseError):
            raise reply
        else:
            self.link.pacer.note(int(reply))

    async def _resume(self, reader: RedisConnection, events: Events) -> None:
        """Before reading again: if Redis restarted empty, read its new streams from
        their start. If it is behind what this node read (it came back from a snapshot
        or an AOF that lost its last writes, or a replica that lacked them took over),
        read on from where this node was: events written since are numbered above it
        (their ids follow Redis' clock, imkit.cluster.scripts), and Redis' top may
        already include some of them. Either way messages may have been missed, and
        the users are told, once."""
        link = self.link
        meta = f"{link.name}:meta"
        (client_id,) = await reader.run([("CLIENT", "ID")])
        self.client_id = int(client_id)
        while True:
            (epoch,) = await reader.run([("HGET", meta, "epoch")])
            if epoch is not None and epoch == link.epoch:
                break
            await anyio.sleep(FIRST_RETRY)  # until the heartbeat has registered again
        self._reset = False
        if epoch != self.epoch:
            self.epoch = epoch
            self.read_from = dict.fromkeys(self.read_from, "0-0")
            self._rejoined.clear()
            self._missed(events)
            return
        streams = list(self.read_from)
        (tops,) = await reader.run([("HMGET", meta, *(f"last:{stream}" for stream in streams))])
        behind = False
        for stream, raw in zip(streams, tops, strict=True):
            if raw is None and stream not in (link.log_key, link.own_log_key):
                continue  # a room that ended meanwhile: nothing to catch up with
            top = str(raw or "0-0")  # decode_responses: a str
            if seq(top) < seq(self.read_from[stream]):
                # The next entry follows Redis' top, not ours: a gap told of already.
                self._rejoined[stream] = top
                behind = True
        if behind:
            self._missed(events)

    def _missed(self, events: Events) -> None:
        self.link.missed += 1
        events.messages_missed()

    def _deliver(self, reply: Any, events: Events) -> None:
        """Apply what one XREAD returned, in sequence order across both streams.

        COUNT limits each stream on its own: when one returned a full batch, the other
        may hold entries beyond that batch's last that must wait for the next read, or
        a sender's later private message would overtake its earlier public one.
        """
        streams = stream_entries(reply)
        limit = min(
            (seq(entries[-1][0]) for _, entries in streams if len(entries) >= READ_BATCH),
            default=None,
        )
        batch: list[tuple[int, bool, dict[str, Any]]] = []
        missed = False
        own_key = self.link.own_log_key
        for stream, entries in streams:
            if stream not in self.read_from:
                continue  # dropped while this XREAD was in flight
            own = stream == own_key
            last = self.read_from[stream]
            start = seq(last)
            entries = [entry for entry in entries if seq(entry[0]) > start]
            rejoined = self._rejoined.pop(stream, last) if entries else last
            for n, (entry_id, fields) in enumerate(entries):
                number = seq(entry_id)
                if limit is not None and number > limit:
                    break
                if (
                    n == 0
                    and fields.get("p", last) not in (last, rejoined, "0-0")
                    and (last != "0-0")
                ):
                    missed = True  # trimmed past us: we fell too far behind
                batch.append((number, own, json.loads(fields["d"])))
                last = entry_id
            self.read_from[stream] = last
        if missed:
            self._missed(events)
        batch.sort(key=lambda item: item[0])
        for _, own, event in batch:
            events.apply(event, own)


def count(entry_id: str) -> int:
    """The N of an event stream's entry id (``SEQ-N``): its place in the stream."""
    return int(entry_id.rpartition("-")[2])


def stream_entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREAD's reply (RESP2, which RedisConnection speaks) as (stream, entries)."""
    return [
        (stream, [(eid, pairs(fields)) for eid, fields in entries]) for stream, entries in reply
    ]


def pairs(fields: list[str]) -> dict[str, str]:
    """A stream entry's fields: RESP2 gives a flat list (k, v, k, v ...)."""
    return dict(zip(fields[::2], fields[1::2], strict=True))


def seq(entry_id: str) -> int:
    """The sequence number of an event stream's entry id (``SEQ-N``)."""
    return int(entry_id.partition("-")[0])
