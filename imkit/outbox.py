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
    what is queued with :meth:`take` (everything, joined into one write) and returns
    what the socket did not accept with :meth:`unget`.

    Past half its limit (the *high-water mark*) an outbox is *congested*: it tells
    ``on_congested`` once, so that the transport can hold back the readers whose lines
    fill it until it drains (backpressure); the transport calls :meth:`relieve` when it
    has drained below a quarter of the limit.
    """

    __slots__ = (
        "limit",
        "high",
        "size",
        "closed",
        "drain",
        "congested",
        "on_ready",
        "on_close",
        "on_congested",
        "_chunks",
        "_ready",
    )

    def __init__(self, limit: int = DEFAULT_MAX_QUEUE) -> None:
        self.limit = limit
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
        self._chunks: list[bytes] = []
        self._ready = False

    @property
    def high_water(self) -> int:
        return self.limit // 2

    @property
    def low_water(self) -> int:
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
        if size > self.limit:
            return False
        self.size = size
        self._chunks.append(data)
        if not self._ready:
            self._ready = True
            self.on_ready()
        if not self.congested:
            self.congested = True
            self.high = self.limit
            self.on_congested(self)
        return True

    def relieve(self, *, rearm: bool = True) -> None:
        """No longer congested; with ``rearm``, the high-water mark applies again (else
        only the limit does: the transport stopped waiting for this client)."""
        self.congested = False
        if rearm and not self.closed:
            self.high = self.high_water

    def take(self) -> bytes:
        """Everything queued, as one bytes object (b"" when empty)."""
        chunks = self._chunks
        self._ready = False
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self.size = 0
        return data

    def unget(self, data: bytes) -> None:
        """Put back, in front, what the socket did not take."""
        if data:
            self._chunks.insert(0, data)
            self.size += len(data)

    def close(self, final: bytes = b"", *, drain: bool = True) -> None:
        """Accept nothing more; ``final`` is queued last, past the limit if need be.

        With ``drain=False`` everything queued before is discarded (a slow consumer).
        """
        if self.closed:
            return
        if not drain:
            self._chunks = []
            self.size = 0
        if final:
            self._chunks.append(final)
            self.size += len(final)
        self.closed = True
        self.high = -1
        self.drain = drain
        self.on_close()

    def __len__(self) -> int:
        return self.size


def _nothing() -> None:
    pass


def _ignore(outbox: Outbox) -> None:
    pass
