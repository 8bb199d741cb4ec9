"""A client's queue of bytes not yet written: bounded, never blocking, and the signals
(ready, closed, congested) by which the transport drains it. The hub fills it."""

from __future__ import annotations

from collections.abc import Callable

# Per-client queue of unsent bytes. 1 MiB holds thousands of chat lines, enough to ride
# out a slow network for seconds, while 10,000 stalled clients still cost at most 10 GiB
# only in the worst case of all of them stalling at once; --max-queue tunes it.
DEFAULT_MAX_QUEUE = 1024 * 1024


class Outbox:
    """Bytes waiting to be written to one client, bounded by ``limit`` bytes.

    :meth:`put` never blocks. The transport is told through ``on_ready`` when there is
    something to write and through ``on_close`` when the outbox is closed; it takes
    what is queued with :meth:`take` (everything, joined into one write) and reports
    what the socket accepted with :meth:`wrote`.

    Past half its limit (the *high-water mark*) an outbox is *congested*: it tells
    ``on_congested`` once, so that the transport can hold back the readers whose lines
    fill it until it drains (backpressure); the transport calls :meth:`relieve` when it
    has drained below a quarter of the limit.

    A *reply* the client asked for (:meth:`put_reply`: a page of history, the list of
    who is online, the messages kept for its login) is *owed* to it: it is queued
    whatever its size and, until it is written, counts neither against the limit nor
    towards congestion (both move up by what is owed), so that asking for a large
    reply never makes a client that reads a slow consumer, nor holds back everyone
    else's readers. The transport paces the asker instead: it handles the client's
    next line only once most of what it is owed has been written (``on_replies_read``).
    """

    __slots__ = (
        "limit",
        "high",
        "size",
        "closed",
        "drain",
        "congested",
        "owed",
        "on_ready",
        "on_close",
        "on_congested",
        "on_replies_read",
        "_chunks",
        "_ready",
        "_flight",
        "_replies",
    )

    def __init__(self, limit: int = DEFAULT_MAX_QUEUE) -> None:
        self.limit = limit
        self.owed = 0  # bytes of replies (put_reply) not yet written, queued or in flight
        # put() takes its slow path past this: the high-water mark, then the limit once
        # congested, -1 once closed. One comparison on the hot path covers all three.
        self.high = self.high_water
        self.size = 0  # bytes queued and not yet handed to the socket
        self.closed = False
        self.drain = True  # after close: write what is queued first (False: give up now)
        self.congested = False
        self.on_ready: Callable[[], None] = _nothing
        self.on_close: Callable[[], None] = _nothing
        self.on_congested: Callable[[Outbox], None] = _ignore
        # Called once, after a write, when what is owed has come down to the reply pace
        # (reply_pace); the transport sets it while the client's next line waits.
        self.on_replies_read: Callable[[], None] | None = None
        self._chunks: list[bytes] = []
        self._ready = False
        self._flight = 0  # bytes taken by the writer and not yet reported (wrote)
        # The replies not yet written whole, oldest first.
        self._replies: list[_Reply] = []

    @property
    def high_water(self) -> int:
        return self.limit // 2 + self.owed

    @property
    def low_water(self) -> int:
        return self.limit // 4 + self.owed

    @property
    def reply_pace(self) -> int:
        """The client's next line is handled only while it is owed at most this much."""
        return self.limit // 4

    def put(self, data: bytes) -> bool:
        """Queue ``data``; False when the limit is exceeded (nothing is queued then)."""
        size = self.size + len(data)
        if size > self.high:
            return self._put_past_high_water(data, size)
        self.size = size
        self._chunks.append(data)
        if not self._ready:
            self._ready = True
            self.on_ready()
        return True

    def _put_past_high_water(self, data: bytes, size: int) -> bool:
        if self.closed:
            return True  # ignored
        # Past the limit only while something else (not owed) waits: a client that has
        # caught up gets one line however long it is (--max-line may exceed the limit).
        if size > self.limit + self.owed and self.size > self.owed:
            return False
        self.size = size
        self._chunks.append(data)
        if not self._ready:
            self._ready = True
            self.on_ready()
        if not self.congested:
            self.congested = True
            self.high = self.limit + self.owed
            self.on_congested(self)
        return True

    def put_reply(self, data: bytes, written: Callable[[], None] | None = None) -> None:
        """Queue ``data``, a reply the client asked for: never refused, not counted
        against the limit while owed (see the class docstring). ``written`` is called
        once all of it has been handed to the socket (never if the client is dropped
        before: what it carries must then be kept for another time)."""
        if self.closed or not data:
            return
        start = self._flight + self.size  # the bytes ahead of it
        self._replies.append(_Reply(start, start + len(data), written))
        self.owed += len(data)
        self.size += len(data)
        self._chunks.append(data)
        self._set_high()
        if not self._ready:
            self._ready = True
            self.on_ready()

    def relieve(self, *, rearm: bool = True) -> None:
        """No longer congested; with ``rearm``, the high-water mark applies again (else
        only the limit does: the transport stopped waiting for this client)."""
        self.congested = False
        if rearm and not self.closed:
            self.high = self.high_water

    def take(self) -> bytes:
        """Everything queued, as one bytes object (b"" when empty); report what became
        of it with :meth:`wrote`."""
        chunks = self._chunks
        self._ready = False
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self.size = 0
        self._flight += len(data)
        return data

    def wrote(self, data: bytes, count: int) -> None:
        """The socket accepted the first ``count`` bytes of ``data`` (what :meth:`take`
        returned); the rest goes back in front, so that the size (and so congestion
        and the limit) counts it."""
        self._flight -= len(data)
        if count < len(data):
            self.unget(data[count:])
        if self._replies and count:
            self._paid(count)

    def unget(self, data: bytes) -> None:
        """Put back, in front, bytes taken and never handed to the writer."""
        if data:
            self._chunks.insert(0, data)
            self.size += len(data)

    def _paid(self, count: int) -> None:
        """``count`` more bytes were written: the replies written whole are done."""
        replies = self._replies
        done: list[Callable[[], None]] = []
        while replies and replies[0].end <= count:
            written = replies.pop(0).written
            if written is not None:
                done.append(written)
        owed = 0
        for reply in replies:
            reply.start -= count
            reply.end -= count
            owed += reply.end - max(reply.start, 0)
        self.owed = owed
        self._set_high()
        for written in done:
            written()
        waiting = self.on_replies_read
        if waiting is not None and owed <= self.reply_pace:
            self.on_replies_read = None
            waiting()

    def _set_high(self) -> None:
        if self.closed:
            self.high = -1
        elif self.congested:
            self.high = self.limit + self.owed
        else:
            self.high = self.high_water

    def close(self, final: bytes = b"", *, drain: bool = True) -> None:
        """Accept nothing more; ``final`` is queued last, past the limit if need be.

        With ``drain=False`` everything queued before is discarded (a slow consumer),
        and the replies owed with it are never written.
        """
        if self.closed:
            return
        if not drain:
            self._chunks = []
            self.size = 0
            self._replies = []
            self.owed = 0
        if final:
            self._chunks.append(final)
            self.size += len(final)
        self.closed = True
        self.high = -1
        self.drain = drain
        self.on_replies_read = None
        self.on_close()

    def __len__(self) -> int:
        return self.size


class _Reply:
    """A reply not yet written whole: where its bytes are, as offsets from the oldest
    byte not yet written (in flight or queued), and who is told once they are."""

    __slots__ = ("start", "end", "written")

    def __init__(self, start: int, end: int, written: Callable[[], None] | None) -> None:
        self.start, self.end, self.written = start, end, written


def _nothing() -> None:
    pass


def _ignore(outbox: Outbox) -> None:
    pass
