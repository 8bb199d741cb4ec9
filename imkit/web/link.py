"""A WebSocket connection as a chat connection's link: JSON lines in, text frames out.

:class:`WebSocketLink` wraps the link the connection would have had (a plain socket or a
TLS stream) and wsproto's state for the WebSocket. To the chat connection
(:class:`~imkit.transport.connection.Connection`) it is a byte stream of JSON Lines:

* each text message received becomes one line (its line breaks are JSON whitespace
  there, so they become ``\\r``: one message is never two requests); a binary message
  or a message longer than the JSON line limit is answered with an error (``refuse``);
  past :data:`HARD_CAP_FACTOR` times that limit the WebSocket is closed with 1009;
  invalid UTF-8 closes it with 1007 (wsproto decides), a ping gets its pong;
* each line the hub queued (bytes of ``\\n``-terminated JSON lines) leaves as one text
  frame. The flusher's :meth:`try_send` stays non-blocking: the frames are built at once
  (a server's frames are not masked, so one line's frame is the same bytes for every
  recipient and a broadcast builds it once, :func:`text_frame`) and written like
  :class:`~imkit.transport.links.SocketLink` writes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import anyio
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason, FrameProtocol

from imkit.protocol import BAD_REQUEST, LINE_TOO_LONG
from imkit.transport.links import LINK_ERRORS, Link

# A message longer than the JSON line limit is answered with line_too_long (its bytes
# discarded as they come); one longer than this many times the limit closes the
# WebSocket with 1009 (message too big): nobody sends that much by mistake.
HARD_CAP_FACTOR = 4
# The close code after a bye with one of these reasons: the policy was violated (1008).
POLICY_REASONS = frozenset({b"banned", b"unauthorized", b"login_required"})
# How long closing may take to send the close frame when the connection was drained.
CLOSE_TIMEOUT = 1.0

BINARY_REFUSED = "binary messages are not accepted: send each request as a text message"

# Built once per distinct line, shared by every connection (server frames are unmasked).
_FRAMES = FrameProtocol(client=False, extensions=[])
_frame_cache: dict[bytes, bytes] = {}
_FRAME_CACHE_SIZE = 256


def text_frame(line: bytes) -> bytes:
    """The WebSocket text frame carrying ``line`` (UTF-8, without its newline)."""
    frame = _frame_cache.get(line)
    if frame is None:
        frame = bytes(_FRAMES.send_data(line.decode(), True))
        if len(_frame_cache) >= _FRAME_CACHE_SIZE:
            _frame_cache.clear()
        _frame_cache[line] = frame
    return frame


class WebSocketLink:
    """A WebSocket (after the handshake) as a :class:`~imkit.transport.links.Link`."""

    __slots__ = (
        "inner",
        "ws",
        "refuse",
        "_limit",
        "_cap",
        "_parts",
        "_size",
        "_too_long",
        "_binary",
        "_deferred",
        "_ended",
        "_backlog",
        "_owed",
        "_lock",
        "_close_code",
    )

    maybe_more = False  # receive() reads on by itself until it has a whole message

    def __init__(self, inner: Link, ws: WSConnection, *, line_limit: int) -> None:
        self.inner = inner
        self.ws = ws
        # Tells the client about a refused message (code, message); the server points it
        # at the hub, which queues an error reply like any other.
        self.refuse: Callable[[str, str], None] = _ignore
        self._limit = line_limit
        self._cap = HARD_CAP_FACTOR * line_limit
        self._parts: list[bytes] = []
        self._size = 0
        self._too_long = False
        self._binary = False
        self._deferred: tuple[str, str] | None = None  # a refusal after lines not yet read
        self._ended = False
        self._backlog = bytearray()  # frame bytes built but not yet written
        self._owed = b""  # lines whose frames are in the backlog, still in the outbox
        self._lock = anyio.Lock()  # held by whoever awaits a write on ``inner``
        self._close_code = CloseReason.NORMAL_CLOSURE

    @property
    def close_code(self) -> int:
        """The close frame's code when the server closes (1000; 1008 after a bye for a
        policy; the server sets 1013 when it is full)."""
        return int(self._close_code)

    @close_code.setter
    def close_code(self, code: int) -> None:
        self._close_code = CloseReason(code)

    # ----------------------------------------------------------------- receiving

    async def receive(self) -> bytes:
        """The next whole messages as JSON lines; b"" when the WebSocket is over."""
        if self._deferred is not None:
            code, message = self._deferred
            self._deferred = None
            self.refuse(code, message)
        lines: list[bytes] = []
        while not self._ended:
            for event in self.ws.events():
                if await self._received(event, lines):
                    break
            if lines:
                return b"".join(lines)
            if self._ended:
                break
            data = await self.inner.receive()
            if not data:
                self._ended = True
                break
            self.ws.receive_data(data)
        return b"".join(lines)

    async def _received(self, event: Event, lines: list[bytes]) -> bool:
        """Handle one event; True to return what was read before going on."""
        if isinstance(event, TextMessage | BytesMessage):
            if isinstance(event, TextMessage):
                part = event.data.encode()
            else:
                part = bytes(event.data)
                self._binary = True
            self._size += len(part)
            if self._size > self._cap:
                await self._close(CloseReason.MESSAGE_TOO_BIG, "message too big")
                return True
            if self._size > self._limit:
                self._too_long, self._parts = True, []
            elif not self._binary:
                self._parts.append(part)
            if not event.message_finished:
                return False
            return self._finished(lines)
        if isinstance(event, Ping):
            await self._send_control(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.REMOTE_CLOSING:  # the peer closes
                await self._send_control(self.ws.send(event.response()))
                self._ended = True
            else:  # wsproto refused a frame (1007 invalid UTF-8, 1002 ...)
                await self._close(event.code, event.reason or "")
            return True
        return False  # a pong

    def _finished(self, lines: list[bytes]) -> bool:
        refusal: tuple[str, str] | None = None
        if self._binary:
            refusal = (BAD_REQUEST, BINARY_REFUSED)
        elif self._too_long:
            limit = self._limit
            refusal = (LINE_TOO_LONG, f"message too long (the limit is {limit} bytes); discarded")
        else:
            line = b"".join(self._parts)
            if b"\n" in line:
                # Outside a JSON string a line break is whitespace, inside one it is
                # invalid either way: as "\r" it stays one line with the same meaning.
                line = line.replace(b"\n", b"\r")
            lines.append(line + b"\n")
        self._parts, self._size, self._too_long, self._binary = [], 0, False, False
        if refusal is None:
            return False
        if lines:  # the replies to the lines before it come first
            self._deferred = refusal
            return True
        self.refuse(*refusal)
        return False

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.state is ConnectionState.OPEN:
            await self._send_control(self.ws.send(CloseConnection(code, reason)))
        self._ended = True

    async def _send_control(self, frame: bytes) -> None:
        """A pong or a close frame, after whatever frames are waiting."""
        self._backlog += frame
        if not self._lock.locked():  # else the writer sends it with the rest
            async with self._lock:
                await self._drain()

    # ------------------------------------------------------------------- sending

    def _frames(self, data: bytes) -> bytes:
        """The frames of ``data``'s lines (but those already in the backlog)."""
        if self._owed:
            if data.startswith(self._owed):  # their frames are in the backlog already
                data = data[len(self._owed) :]
            self._owed = b""
        frames = []
        for line in data.split(b"\n"):
            if line:
                if line.startswith(b'{"type":"bye"'):
                    self._note_bye(line)
                frames.append(text_frame(line))
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def _note_bye(self, line: bytes) -> None:
        try:
            reason = json.loads(line).get("reason", "")
        except ValueError:  # pragma: no cover - the hub's own JSON
            return
        if reason.encode() in POLICY_REASONS:
            self._close_code = CloseReason.POLICY_VIOLATION

    def try_send(self, data: bytes) -> int:
        if self._lock.locked():
            return 0
        inner, backlog = self.inner, self._backlog
        if backlog:
            del backlog[: inner.try_send(bytes(backlog))]
            if backlog:
                return 0
        frames = self._frames(data)
        sent = inner.try_send(frames)
        if sent == len(frames):
            return len(data)
        # Some frames are still to go: their lines stay in the outbox (so its size and
        # the slow consumer limit count them) and the writer task finishes them.
        backlog += frames[sent:]
        self._owed = data
        return 0

    async def write(self, data: bytes) -> int:
        async with self._lock:
            self._backlog += self._frames(data)
            await self._drain()
        return len(data)

    async def _drain(self) -> None:
        backlog, inner = self._backlog, self.inner
        while backlog:
            del backlog[: await inner.write(bytes(backlog))]

    async def aclose(self, linger: float) -> None:
        """A close frame (1000, or 1008 after a bye for a policy), then close."""
        with contextlib.suppress(*LINK_ERRORS):
            if self.ws.state is ConnectionState.OPEN:
                self._backlog += self.ws.send(CloseConnection(self._close_code))
            if self._backlog and not self._lock.locked():
                # Drained: up to CLOSE_TIMEOUT for it; else one attempt, no waiting.
                with anyio.move_on_after(CLOSE_TIMEOUT if linger > 0 else 0):
                    async with self._lock:
                        await self._drain()
        await self.inner.aclose(linger)


def _ignore(code: str, message: str) -> None:
    pass
